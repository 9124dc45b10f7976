# lab verify: one line per package, `<name> installed|missing`, from rpm's database.
for p in {{packages}}; do
  if rpm -q --whatprovides "$p" >/dev/null 2>&1; then
    echo "$p installed"
  else
    echo "$p missing"
  fi
done

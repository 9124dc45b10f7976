# lab verify: one line per package, `<name> installed|missing`, from rpm's database.
# shellcheck disable=SC2043 # (a list of one is a loop that runs once)
for p in {{packages}}; do
  if rpm -q --whatprovides "$p" >/dev/null 2>&1; then
    echo "$p installed"
  else
    echo "$p missing"
  fi
done

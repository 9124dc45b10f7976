# lab verify: one line per package, `<name> installed|missing`, from dpkg's database.
# shellcheck disable=SC2043 # (a list of one is a loop that runs once)
for p in {{packages}}; do
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = 'install ok installed' ]; then
    echo "$p installed"
  else
    echo "$p missing"
  fi
done

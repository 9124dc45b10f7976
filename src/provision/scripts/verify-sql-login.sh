# Root logs in with DB_ROOT_PASS once the secure installation set it, else as a fresh
# server lets it (no password on MariaDB 10.1, the unix socket on 10.4 and later).
pw=$(cat {{secret}} 2>/dev/null) || pw=
[[ $pw =~ ^[A-Za-z0-9]*$ ]] || pw=
if [ -n "$pw" ] && MYSQL_PWD=$pw mysql --no-defaults --user=root -e 'SELECT 1' >/dev/null 2>&1; then
  export MYSQL_PWD=$pw
fi
sql() { mysql --no-defaults --user=root -NB "$@" 2>&1; }

pw=$(cat {{secret}}) &&
[[ $pw =~ ^[A-Za-z0-9]+$ ]] || { echo 'lab: DB_ROOT_PASS must be letters and digits' >&2; exit 1; }
(umask 077 && printf '[client]\nuser=root\npassword=%s\n' "$pw" > /root/.my.cnf.lab)
# Log in with the password if a previous run set it, else as a fresh server allows.
if mysql --defaults-file=/root/.my.cnf.lab -e 'SELECT 1' >/dev/null 2>&1; then
  login=(--defaults-file=/root/.my.cnf.lab)
else
  login=(--no-defaults --user=root)
fi
hosts=$(mysql "${login[@]}" -NB -e "SELECT Host FROM mysql.user WHERE User = 'root' AND Host IN {{local_root}}")
drops=$(mysql "${login[@]}" -NBr < {{drops}})
{
  while read -r host; do
    [ -z "$host" ] || printf "SET PASSWORD FOR 'root'@'%s' = PASSWORD('%s');\n" "$host" "$pw"
  done <<< "$hosts"
  printf '%s\n' "$drops"
  cat {{apply}}
} | mysql "${login[@]}"
mv /root/.my.cnf.lab /root/.my.cnf

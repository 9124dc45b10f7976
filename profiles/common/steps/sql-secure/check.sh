pw=$(cat {{secret}}) &&
[[ $pw =~ ^[A-Za-z0-9]+$ ]] &&
[ "$({ printf "SET @pw = '%s';\n" "$pw"; cat {{check}}; } | MYSQL_PWD="$pw" mysql --no-defaults --user=root -NB 2>/dev/null)" = 0 ]

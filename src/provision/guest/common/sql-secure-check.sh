[ "$({ printf "SET @pw = '%s';\n" "$pw"; cat {{check}}; } | mysql --defaults-file=/root/.my.cnf -NB)" = 0 ]

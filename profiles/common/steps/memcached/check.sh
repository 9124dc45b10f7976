{{installed}} &&
[ "$(grep -c -e {{pattern}} {{path}})" = 1 ] &&
grep -qxF -- {{line}} {{path}} &&
systemctl is-enabled --quiet {{service}} &&
systemctl is-active --quiet {{service}} &&
(exec 3<>/dev/tcp/{{host}}/{{port}}) 2>/dev/null

[ "$(grep -c -e {{pattern}} {{path}})" = 1 ] &&
grep -qxF -- {{line}} {{path}}

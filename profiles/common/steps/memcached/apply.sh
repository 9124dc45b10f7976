{{ensure}}
sed -i -e {{delete}} {{path}}
printf '%s\n' {{line}} >> {{path}}
systemctl enable {{service}}
systemctl restart {{service}}
# memcached is a simple service: active as soon as it is started, listening a moment later.
# Wait (20 s at most) until it takes a connection by the controller's name, as the other
# nodes will reach it.
for _ in $(seq 1 100); do
  (exec 3<>/dev/tcp/{{host}}/{{port}}) 2>/dev/null && break
  sleep 0.2
done

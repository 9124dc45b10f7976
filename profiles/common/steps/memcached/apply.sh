{{ensure}}
sed -i -e {{delete}} {{path}}
printf '%s\n' {{line}} >> {{path}}
systemctl enable {{service}}
systemctl restart {{service}}

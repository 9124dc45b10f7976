if ! {{user_exists}}; then
{{add}}
fi
rabbitmqctl set_permissions openstack ".*" ".*" ".*"

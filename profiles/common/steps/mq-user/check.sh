rabbitmqctl -q list_user_permissions openstack 2>/dev/null | awk '$1 == "/" && $2 == ".*" && $3 == ".*" && $4 == ".*" {found = 1} END {exit !found}'

rabbitmqctl -q list_users | awk '$1 == "openstack" {found = 1} END {exit !found}'

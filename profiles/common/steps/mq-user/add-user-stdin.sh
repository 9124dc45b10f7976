  # The password goes on stdin, out of the process list.
  rabbitmqctl -q add_user openstack < {{secret}}

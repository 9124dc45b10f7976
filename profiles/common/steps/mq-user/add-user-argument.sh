  # rabbitmqctl 3.6 takes the password only as an argument: visible in ps while it runs.
  rabbitmqctl add_user openstack "$(cat {{secret}})"

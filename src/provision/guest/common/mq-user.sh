add_user() {
{{add}}
}
# One rabbitmqctl call (an Erlang VM's boot: seconds under emulation) where the user is
# new; adding fails for a user that exists already (a run stopped after it), which then
# must be there.
if ! add_user; then
  {{user_exists}}
fi
rabbitmqctl set_permissions openstack ".*" ".*" ".*"

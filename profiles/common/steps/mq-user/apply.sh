add_user() {
{{add}}
}
# One rabbitmqctl call (an Erlang VM's boot: seconds under emulation) where the user is
# new; adding fails for a user that exists already (a run stopped after it), which then
# must be there.
if ! add_user; then
  rabbitmqctl -q list_users | awk '$1 == "openstack" {found = 1} END {exit !found}'
fi
rabbitmqctl set_permissions openstack ".*" ".*" ".*"

{{installed}} &&
cmp -s {{staged}} {{conf}} &&
systemctl is-enabled --quiet {{service}} &&
systemctl is-active --quiet {{service}}

{{installed}} &&
systemctl is-enabled --quiet {{service}} &&
systemctl is-active --quiet {{service}}

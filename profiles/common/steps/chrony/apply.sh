{{ensure}}
install -m 0644 {{staged}} {{conf}}
systemctl enable {{service}}
systemctl restart {{service}}

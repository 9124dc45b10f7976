{{ensure}}
systemctl enable {{service}}
systemctl start {{service}}

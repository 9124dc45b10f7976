{{install}}
systemctl enable {{service}}
systemctl {{verb}} {{service}}

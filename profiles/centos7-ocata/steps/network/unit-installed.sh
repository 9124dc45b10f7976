[ -f /usr/lib/systemd/system/{{unit}} ]

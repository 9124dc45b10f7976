# lab start, on a node it booted (src/provision/mod.rs, BOOT_WAIT): returns once systemd has
# started every unit of the boot (`running`, or `degraded` with a unit failed), so the
# services `lab verify` checks answer; at most 300 s. Prints the state it reached.
state=$(timeout 300 systemctl is-system-running --wait 2>/dev/null)
echo "${state:-starting}"
case "$state" in running|degraded) exit 0 ;; *) exit 1 ;; esac

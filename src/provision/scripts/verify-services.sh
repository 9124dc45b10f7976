# lab verify: one line per unit, `<unit> <is-enabled> <is-active>`.
# shellcheck disable=SC2043 # (a list of one is a loop that runs once)
for u in {{units}}; do
  echo "$u $(systemctl is-enabled "$u" 2>/dev/null) $(systemctl is-active "$u" 2>/dev/null)"
done

# lab runs a step in one session: its check; when that fails, its apply, then its check
# again. Each part runs in a subshell of its own (its `exit` ends only itself), stdin
# closed, its output and errors together; a marker line after each says how it went:
#   @@lab-step@@ ok          the first check passed (its output is not kept)
#   @@lab-step@@ failed N    the apply exited with status N (its output is above)
#   @@lab-step@@ applied     the apply succeeded (its output is above)
#   @@lab-step@@ checked N   the second check exited with status N (its output is above)
if (
{{check}}
) </dev/null >/dev/null 2>&1; then
  printf '\n@@lab-step@@ ok\n'
  exit 0
fi
(
{{apply}}
) </dev/null 2>&1
status=$?
if [ "$status" -ne 0 ]; then
  printf '\n@@lab-step@@ failed %d\n' "$status"
  exit 0
fi
printf '\n@@lab-step@@ applied\n'
(
{{check}}
) </dev/null 2>&1
printf '\n@@lab-step@@ checked %d\n' "$?"

# lab's command for every script it runs: the files the script needs, then the script, all
# on stdin. Each file is a line `MODE LENGTH PATH` and its LENGTH bytes (bash reads a pipe a
# byte at a time and `head -c` no further than asked, so each takes exactly its own); a line
# `-` ends them. The rest is the script: saved to a private temp file, then run with stdin
# from /dev/null (a plain `bash -s` would let any command that reads stdin, rabbitmqctl or
# apt, swallow the rest of the script, which then ends early with status 0).
while read -r mode length path; do
  [ "$mode" = - ] && break
  head -c "$length" | install -D -m "$mode" /dev/stdin "$path" ||
    { echo "@@lab-write-failed@@ $path" >&2; exit 125; }
done
f=$(mktemp) || exit 125
trap 'rm -f "$f"' EXIT
cat > "$f"
bash "$f" < /dev/null

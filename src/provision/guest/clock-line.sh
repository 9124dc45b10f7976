# lab reset's clock line (src/ssh/clock.rs, CLOCK_LINE): one request per line on stdin, one
# answer line each, on one channel, so that a reading's round trip is a few milliseconds
# rather than a command's start (a second or more on a loaded TCG guest).
#   read          prints the clock: seconds since the epoch, to the nanosecond
#   step SECONDS  moves the clock by SECONDS (negative: back; to the microsecond), then
#                 prints it
# Anything else, or a step that fails, answers a line starting with `error:`.
while read -r request by; do
  case $request in
    read) date +%s.%N ;;
    step)
      now=$(date +%s.%N)
      to=$(awk -v now="$now" -v by="$by" 'BEGIN { printf "%.6f", now + by }')
      if err=$(date -u -s "@$to" 2>&1 >/dev/null); then
        date +%s.%N
      else
        echo "error: date -s @$to failed: $err"
      fi
      ;;
    *) echo "error: unknown request: $request" ;;
  esac
done

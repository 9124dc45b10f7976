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
      # Relative to the clock `date` itself reads, so no fork's delay is lost; a date that
      # takes no fractional relative seconds (older coreutils) gets the sum instead.
      if ! err=$(date -u -s "$by seconds" 2>&1 >/dev/null); then
        now=$(date +%s.%N)
        to=$(awk -v now="$now" -v by="$by" 'BEGIN { printf "%.6f", now + by }')
        err=$(date -u -s "@$to" 2>&1 >/dev/null) || { echo "error: date -s @$to failed: $err"; continue; }
      fi
      date +%s.%N
      ;;
    *) echo "error: unknown request: $request" ;;
  esac
done

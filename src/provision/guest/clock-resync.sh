# lab reset, on every node right after the revert (src/provision/verify.rs, CLOCK_RESYNC).
# Set before this line:
#   set_time  the host's time as @SECONDS.NANOS when the guest agent could not set the
#             clock, else empty;
#   follow    yes on a node whose chrony follows another node of the lab: return only once
#             it follows its source again (`lab verify` checks that at once).
#
# The revert brought back chronyd's samples from before the snapshot. They no longer fit the
# clock that was just set, so chronyd would call its source too variable (`^~`, Reference ID
# 00000000) for minutes: it drops them and measures its sources again at once.
set -u
if [ -n "$set_time" ]; then
  date -u -s "$set_time" >/dev/null
fi
# No chrony, or not running (a lab snapshotted before provisioning): nothing to resync.
command -v chronyc >/dev/null || exit 0
chronyc -n tracking >/dev/null 2>&1 || exit 0
if chronyc -a 'reset sources' >/dev/null 2>&1; then
  chronyc -a 'burst 4/4' >/dev/null
else
  # chrony before 4.0 (CentOS 7) has no `reset sources`: a restart forgets the samples, and
  # the server's iburst measures it again at once.
  systemctl restart chronyd.service 2>/dev/null || systemctl restart chrony.service
fi
[ "$follow" = yes ] || exit 0
if ! chronyc waitsync 60 0 0 1 >/dev/null; then
  echo "chrony follows no source 60 s after the reset:"
  chronyc -n sources
  exit 1
fi
# Its clock was set through the guest agent, which can leave it a second or more behind
# under load: step it to its source now rather than slew for minutes.
chronyc -a makestep >/dev/null
chronyc -n tracking | grep -E '^(Reference ID|Stratum|System time)'

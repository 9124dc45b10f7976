# lab reset, on every node once every clock is within a few milliseconds of the host's
# (src/provision/clock.rs, CLOCK_RESYNC). Set before this line:
#   follow    on a node whose chrony follows another node of the lab, that node's address:
#             return only once chrony follows it again (`lab verify` checks that at once);
#             empty elsewhere.
#
# The revert brought back chronyd's samples from before the snapshot. They no longer fit the
# clock that was just set, so chronyd would call its source too variable (`^~`, Reference ID
# 00000000) for minutes: it drops them and measures its sources again at once.
set -u
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
[ -n "$follow" ] || exit 0
# Not one of its sources (a lab snapshotted before provisioning): nothing to wait for.
chronyc -n sources | grep -qF " $follow " || exit 0
if ! chronyc waitsync 600 0 0 0.1 >/dev/null; then
  echo "chrony follows no source 60 s after the reset:"
  chronyc -n sources
  exit 1
fi
# Its source's clock and its own were both set from the host's: step it to the source now
# rather than slew for minutes should they still differ.
chronyc -a makestep >/dev/null
chronyc -n tracking | grep -E '^(Reference ID|Stratum|System time)'

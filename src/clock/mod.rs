//! A guest clock against the host's, pure: the clock line the ssh layer runs on a node
//! ([`CLOCK_LINE`]), one reading over one round trip ([`ClockReading`]), the script that
//! makes chrony follow its source again ([`clock_resync`]) and what `lab reset` makes of
//! them. A bottom module: it imports nothing of the crate. The clock's other parts, by
//! layer: `ssh/clock.rs` runs the line over SSH, the guest agent sets a clock through
//! libvirt (`lifecycle/snapshot.rs`), and `app/clock.rs` is the operation (after a revert
//! or a restore, every clock set, chrony following, each clock read back).

/// `lab reset`'s clock line ([`crate::ssh::ClockLine`]): answers `read` with the clock and
/// `step SECONDS` by moving the clock relative to itself, one line each, on one channel. The
/// script lives beside this module.
pub const CLOCK_LINE: &str = include_str!("clock-line.sh");

/// Run by `lab reset` on every node once every clock is right: chrony drops the samples
/// the revert brought back and measures its sources again; on a node that follows another
/// node of the lab it returns once chrony follows it (exit 1 with `chronyc sources` if not
/// within 60 s). Reads `follow`, set by [`clock_resync`].
pub const CLOCK_RESYNC: &str = include_str!("clock-resync.sh");

/// [`CLOCK_RESYNC`] for one node: `follow` is the address of the node of the lab its chrony
/// follows (a compute node follows the controller).
pub fn clock_resync(follow: Option<std::net::Ipv4Addr>) -> String {
    let follow = follow.map_or(String::new(), |ip| ip.to_string());
    format!("follow={follow}\n{CLOCK_RESYNC}")
}

/// A clock within this of the host's is left alone by `lab reset` (seconds).
pub const STEP_ABOVE: f64 = 0.05;

/// How far a guest clock may be off the host's when `lab reset` returns, in seconds.
pub const MAX_CLOCK_OFFSET: f64 = 0.5;

/// Prints the guest's clock: seconds since the epoch, to the nanosecond.
pub const READ_CLOCK: &str = "date +%s.%N\n";

/// One reading of a guest clock: the host's clock when the command was sent and when its
/// answer came, and the guest's clock in between (seconds since the epoch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockReading {
    pub sent: f64,
    pub guest: f64,
    pub received: f64,
}

impl ClockReading {
    /// The guest's offset from the host, taking the guest's reading at the middle of the
    /// round trip, and the most that can be wrong by (half the round trip).
    pub fn offset(&self) -> (f64, f64) {
        let half = (self.received - self.sent) / 2.0;
        (self.guest - (self.sent + half), half)
    }

    /// How far to move the guest clock to the host's: `None` within [`STEP_ABOVE`].
    pub fn correction(&self) -> Option<f64> {
        let (offset, _) = self.offset();
        (offset.abs() > STEP_ABOVE).then_some(-offset)
    }

    /// Whether the guest clock is more than [`MAX_CLOCK_OFFSET`] off the host's wherever in
    /// the round trip it was read.
    pub fn too_far(&self) -> bool {
        let (offset, half) = self.offset();
        offset.abs() - half > MAX_CLOCK_OFFSET
    }
}

/// The reading of `readings` with the shortest round trip (the tightest bound), if any.
pub fn best_reading(readings: &[ClockReading]) -> Option<ClockReading> {
    readings
        .iter()
        .copied()
        .min_by(|a, b| (a.received - a.sent).total_cmp(&(b.received - b.sent)))
}

/// The guest clock [`READ_CLOCK`] printed, in seconds since the epoch.
pub fn parse_clock(stdout: &str) -> Option<f64> {
    stdout.trim().parse().ok().filter(|t: &f64| t.is_finite())
}

#[cfg(test)]
mod tests {
    use super::{ClockReading, best_reading, parse_clock};

    fn reading(sent: f64, guest: f64, received: f64) -> ClockReading {
        ClockReading {
            sent,
            guest,
            received,
        }
    }

    #[test]
    fn a_clock_is_too_far_only_when_off_by_more_than_half_a_second_across_the_round_trip() {
        let (offset, half) = reading(100.0, 100.35, 100.2).offset();
        assert!((offset - 0.25).abs() < 1e-9 && (half - 0.1).abs() < 1e-9);
        assert!(!reading(100.0, 100.4, 100.2).too_far());
        assert!(!reading(100.0, 99.6, 100.2).too_far(), "0.4 s behind");
        assert!(reading(100.0, 100.75, 100.2).too_far(), "0.55-0.75 s ahead");
        assert!(reading(100.0, 99.45, 100.2).too_far(), "0.55-0.75 s behind");
        assert!(
            !reading(100.0, 101.5, 101.2).too_far(),
            "a 1.2 s round trip cannot prove a 0.9 s offset"
        );
    }

    #[test]
    fn a_clock_is_moved_by_minus_its_offset_only_past_fifty_milliseconds() {
        assert_eq!(reading(100.0, 100.04, 100.0).correction(), None);
        assert_eq!(reading(100.0, 99.97, 100.02).correction(), None);
        let back = reading(100.0, 100.75, 100.5).correction().unwrap();
        assert!((back + 0.5).abs() < 1e-9, "{back}");
        let forward = reading(100.0, 40.0, 100.0).correction().unwrap();
        assert!((forward - 60.0).abs() < 1e-9, "{forward}");
    }

    #[test]
    fn the_tightest_reading_wins_and_dates_parse() {
        let best = best_reading(&[
            reading(0.0, 5.0, 1.0),
            reading(2.0, 2.1, 2.2),
            reading(3.0, 3.0, 3.5),
        ]);
        assert_eq!(best, Some(reading(2.0, 2.1, 2.2)));
        assert_eq!(best_reading(&[]), None);
        let t = parse_clock("1795769509.123456789\n").unwrap();
        assert!((t - 1_795_769_509.123_456).abs() < 1e-5, "{t}");
        assert_eq!(parse_clock("date: invalid\n"), None);
        assert_eq!(parse_clock("inf"), None);
    }
}

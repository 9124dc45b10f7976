//! [`Counting`]: a reader that reports the bytes read through it as progress events
//! (image uploads).

use std::io::Read;
use std::time::Instant;

use super::{Action, Progress, Work};

/// The smallest number of bytes between two [`Action::Moved`] events of a [`Counting`]
/// reader (and at most 200 events per transfer).
pub const MIN_STEP: u64 = 1 << 20;

/// A reader that reports the bytes read through it as [`Action::Moved`] events of
/// `kind name`: one at the first read, then one per 0.5% of `total` (at least
/// [`MIN_STEP`] bytes apart), and one when the last byte is read or the reader ends.
pub struct Counting<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
    kind: &'static str,
    name: String,
    total: u64,
    done: u64,
    /// `done` at the last event, `None` before the first.
    reported: Option<u64>,
    start: Instant,
}

impl<'a, R: Read> Counting<'a, R> {
    /// Counts `inner`, which holds `total` bytes.
    pub fn new(
        inner: R,
        total: u64,
        kind: &'static str,
        name: &str,
        progress: &'a dyn Progress,
    ) -> Self {
        Counting {
            inner,
            progress,
            kind,
            name: name.to_string(),
            total,
            done: 0,
            reported: None,
            start: Instant::now(),
        }
    }

    /// Bytes read so far.
    pub fn done(&self) -> u64 {
        self.done
    }

    fn report(&mut self, end: bool) {
        let step = (self.total / 200).max(MIN_STEP);
        let due = match self.reported {
            None => true,
            Some(last) => self.done != last && (end || self.done >= last + step),
        };
        if !due {
            return;
        }
        self.reported = Some(self.done);
        let moved = Action::Moved {
            done: self.done,
            total: Some(self.total),
        };
        let work = Work::since(self.kind, &self.name, moved, self.start);
        self.progress.event(work.into());
    }
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        self.report(n == 0 || self.done >= self.total);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Event;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Events(Mutex<Vec<Event>>);

    impl Progress for Events {
        fn event(&self, e: Event) {
            self.0.lock().unwrap().push(e);
        }
    }

    impl Events {
        fn moved(&self) -> Vec<(u64, Option<u64>)> {
            let events = self.0.lock().unwrap();
            events
                .iter()
                .map(|e| match e {
                    Event::Work(Work {
                        action: Action::Moved { done, total },
                        ..
                    }) => (*done, *total),
                    other => panic!("not a byte count: {other:?}"),
                })
                .collect()
        }
    }

    #[test]
    fn counting_reader_passes_every_byte_and_reports_start_steps_and_end() {
        let data: Vec<u8> = (0..5 * MIN_STEP + 123).map(|i| i as u8).collect();
        let events = Events::default();
        let mut reader = Counting::new(data.as_slice(), data.len() as u64, "volume", "v", &events);
        let mut out = Vec::new();
        // Small reads: the reader must not report each one.
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, data, "the bytes pass unchanged");
        assert_eq!(reader.done(), data.len() as u64);
        let moved = events.moved();
        let total = Some(data.len() as u64);
        assert_eq!(moved.first(), Some(&(64 << 10, total)));
        assert_eq!(moved.last(), Some(&(data.len() as u64, total)));
        assert_eq!(
            moved.len(),
            6,
            "first read, one per MiB, the end: {moved:?}"
        );
        assert!(
            moved.windows(2).all(|w| w[1].0 > w[0].0),
            "each event reports more: {moved:?}"
        );
        let first = events.0.lock().unwrap()[0].clone();
        let Event::Work(e) = first else {
            panic!("not work: {first:?}")
        };
        assert_eq!((e.kind, e.name.as_str()), ("volume", "v"));
    }

    #[test]
    fn counting_reader_steps_by_half_a_percent_of_a_large_total() {
        let total = 1000 * MIN_STEP;
        let events = Events::default();
        let mut reader = Counting::new(std::io::repeat(0).take(total), total, "k", "n", &events);
        std::io::copy(&mut reader, &mut std::io::sink()).unwrap();
        let moved = events.moved();
        assert!(
            (200..=202).contains(&moved.len()),
            "about 200 events: {}",
            moved.len()
        );
        assert_eq!(moved.last().unwrap().0, total);
    }

    #[test]
    fn a_short_reader_reports_where_it_ended() {
        let events = Events::default();
        let mut reader = Counting::new(&b"abc"[..], 10, "k", "n", &events);
        std::io::copy(&mut reader, &mut std::io::sink()).unwrap();
        assert_eq!(events.moved(), [(3, Some(10))]);
    }
}

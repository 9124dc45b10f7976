//! `lab class`: N instances of one lab spread over libvirt hosts. `up` reads each host's room
//! through libvirt, places the instances ([`crate::class::place`]), records the placement in
//! the class file, then brings the instances up concurrently, a bounded number per host; the
//! other verbs act on every instance of the file, or on one.

use crate::failure::{ExitClass, Failure};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Mutex;

use super::{InstanceChoice, LabChoice, Purpose, Target, UpReport};
use crate::class::{self, ClassError, ClassFile, Need, Room, Seat, VCPU_OVERCOMMIT};
use crate::libvirt::{Hypervisor, Libvirt, RunState};
use crate::lifecycle::drift::domain_facts;
use crate::model::units::Cidr;
use crate::progress::{Event, Progress};
use crate::render::Accel;
use crate::state;

/// A class and how its instances are resolved.
#[derive(Debug, Clone)]
pub struct Class {
    pub name: String,
    /// The pool new instances' external subnets come from.
    pub subnet_pool: Cidr,
    pub pool_root: Option<PathBuf>,
}

impl Class {
    /// The class file, or an error saying how to make one.
    pub fn file(&self) -> crate::failure::Result<ClassFile> {
        let file = state::read_class(&state::root()?, &self.name)?;
        Ok(file.ok_or_else(|| ClassError::NoClass(self.name.clone()))?)
    }

    /// The instance `seat` of the class's lab, on its host.
    pub fn target(
        &self,
        lab: &str,
        seat: &Seat,
        purpose: Purpose,
    ) -> crate::failure::Result<Target> {
        let instance = InstanceChoice {
            name: seat.instance.clone(),
            pool: self.subnet_pool,
        };
        let choice = LabChoice::find(Some(lab));
        let root = self.pool_root.clone();
        Target::resolve(choice, &seat.uri, root, Some(&instance), purpose)
    }

    /// The seats of the class, or only `only`.
    pub fn seats(&self, file: &ClassFile, only: Option<&str>) -> Result<Vec<Seat>, ClassError> {
        let seats: Vec<Seat> = file
            .instances
            .iter()
            .filter(|s| only.is_none_or(|o| o == s.instance))
            .cloned()
            .collect();
        match only {
            Some(o) if seats.is_empty() => Err(ClassError::NoSuchSeat {
                class: self.name.clone(),
                instance: o.to_string(),
            }),
            _ => Ok(seats),
        }
    }
}

/// What a host can still give guests: the memory libvirt says is free (else its size less the
/// running domains'), [`VCPU_OVERCOMMIT`] vCPUs per CPU less the running domains'.
pub fn room(hv: &dyn Hypervisor) -> crate::failure::Result<Room> {
    let size = hv.node_size()?;
    let running: Vec<_> = hv
        .domains()?
        .iter()
        .filter(|d| d.state == RunState::Running)
        .map(|d| domain_facts(&d.xml))
        .collect();
    let used_kib: u64 = running.iter().filter_map(|f| f.memory_kib).sum();
    let used_vcpus: u32 = running.iter().filter_map(|f| f.vcpus).sum();
    let memory = match hv.free_memory()? {
        Some(free) => free,
        None => size.memory_bytes.saturating_sub(used_kib * 1024),
    };
    Ok(Room {
        uri: hv.uri().to_string(),
        memory,
        vcpus: i64::from(size.cpus * VCPU_OVERCOMMIT) - i64::from(used_vcpus),
    })
}

/// The class file of a class: the recorded one, or (none yet) `count` instances of `lab`
/// placed on `hosts` by their room (not recorded yet: see [`record_class`]).
pub fn plan_class(
    class: &Class,
    lab: &LabChoice,
    hosts: &[String],
    count: Option<usize>,
) -> crate::failure::Result<ClassFile> {
    let root = state::root()?;
    if let Some(file) = state::read_class(&root, &class.name)? {
        return Ok(file);
    }
    let Some(count) = count.filter(|n| *n > 0) else {
        return Err(Failure::new(
            ExitClass::Usage,
            format!(
                "class {} is new: say how many instances with --count N",
                class.name
            ),
        ));
    };
    let source = lab.source()?;
    let (base, _) = source.load(&crate::image::Catalogue::builtin())?;
    let mut rooms = Vec::new();
    for uri in hosts {
        rooms.push(room(&Libvirt::open(uri)?)?);
    }
    let seats = class::place(&rooms, Need::of(&base), &class::seat_names(count))?;
    let file = ClassFile {
        lab: lab.record(&base.name).arg,
        instances: seats,
    };
    Ok(file)
}

/// Records the class file (before anything is created, so `class down` finds every instance).
pub fn record_class(class: &Class, file: &ClassFile) -> crate::failure::Result<()> {
    Ok(state::write_class(&state::root()?, &class.name, file)?)
}

/// Brings the seats up, at most `per_host` at once on each host; every seat's result.
pub fn up_seats(
    class: &Class,
    file: &ClassFile,
    seats: &[Seat],
    per_host: usize,
    accel: Accel,
    provision: Option<super::Provisioning>,
    progress: &dyn Progress,
) -> Vec<(Seat, crate::failure::Result<UpReport>)> {
    each_seat(seats, per_host, |seat| {
        let t = class.target(&file.lab, seat, Purpose::Up)?;
        super::up(&t, accel, None, &[], provision, &tagged(progress, seat))
    })
}

/// Takes the seats down, at most `per_host` at once on each host, and drops those that went
/// from the class file (the file goes with the last one); every seat's result.
pub fn down_seats(
    class: &Class,
    file: &ClassFile,
    seats: &[Seat],
    per_host: usize,
    progress: &dyn Progress,
) -> crate::failure::Result<Vec<(Seat, crate::failure::Result<usize>)>> {
    let results = each_seat(seats, per_host, |seat| {
        let t = class.target(&file.lab, seat, Purpose::Down)?;
        super::down(&t, &tagged(progress, seat))
    });
    let gone: Vec<&str> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(s, _)| s.instance.as_str())
        .collect();
    let mut left = file.clone();
    left.instances
        .retain(|s| !gone.contains(&s.instance.as_str()));
    record_class(class, &left)?;
    Ok(results)
}

/// Runs the checks of `steps` (all without any) on every seat, at most `per_host` at once
/// on each host; every seat's results, or why it could not be checked.
pub fn verify_seats(
    class: &Class,
    file: &ClassFile,
    seats: &[Seat],
    steps: &[String],
    per_host: usize,
    timeouts: &crate::ssh::Timeouts,
    progress: &dyn Progress,
) -> Vec<(
    Seat,
    crate::failure::Result<Vec<crate::provision::verify::CheckResult>>,
)> {
    each_seat(seats, per_host, |seat| {
        let t = class.target(&file.lab, seat, Purpose::Use)?;
        super::verify_nodes(&t, steps, timeouts, &tagged(progress, seat))
    })
}

/// Resets the seats to snapshot `snapshot`, at most `per_host` at once on each host.
pub fn reset_seats(
    class: &Class,
    file: &ClassFile,
    seats: &[Seat],
    snapshot: &str,
    per_host: usize,
    progress: &dyn Progress,
) -> Vec<(Seat, crate::failure::Result<()>)> {
    each_seat(seats, per_host, |seat| {
        let t = class.target(&file.lab, seat, Purpose::Use)?;
        super::reset(&t, snapshot, &tagged(progress, seat))
    })
}

/// Stops the seats (`lab stop` on each), at most `per_host` at once on each host.
pub fn stop_seats(
    class: &Class,
    file: &ClassFile,
    seats: &[Seat],
    mode: crate::lifecycle::StopMode,
    per_host: usize,
    progress: &dyn Progress,
) -> Vec<(Seat, crate::failure::Result<crate::lifecycle::StopReport>)> {
    each_seat(seats, per_host, |seat| {
        let t = class.target(&file.lab, seat, Purpose::Use)?;
        super::stop(&t, mode, &tagged(progress, seat))
    })
}

/// Starts the seats (`lab start` on each), at most `per_host` at once on each host.
pub fn start_seats(
    class: &Class,
    file: &ClassFile,
    seats: &[Seat],
    per_host: usize,
    timeouts: &crate::ssh::Timeouts,
    progress: &dyn Progress,
) -> Vec<(Seat, crate::failure::Result<super::Started>)> {
    each_seat(seats, per_host, |seat| {
        let t = class.target(&file.lab, seat, Purpose::Use)?;
        super::start(&t, timeouts, &tagged(progress, seat))
    })
}

fn tagged<'a>(inner: &'a dyn Progress, seat: &'a Seat) -> Tagged<'a> {
    Tagged {
        inner,
        seat: &seat.instance,
    }
}

/// Runs `f` for every seat, at most `per_host` at once on each host; results in seat order.
pub fn each_seat<T: Send>(
    seats: &[Seat],
    per_host: usize,
    f: impl Fn(&Seat) -> crate::failure::Result<T> + Sync,
) -> Vec<(Seat, crate::failure::Result<T>)> {
    let mut queues: BTreeMap<&str, Mutex<VecDeque<usize>>> = BTreeMap::new();
    for (i, seat) in seats.iter().enumerate() {
        let q = queues.entry(&seat.uri).or_default();
        q.get_mut().expect("not shared yet").push_back(i);
    }
    let results: Mutex<Vec<(usize, crate::failure::Result<T>)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for queue in queues.values() {
            for _ in 0..per_host.max(1) {
                s.spawn(|| {
                    loop {
                        // (The guard must go before the work: a `while let` would hold it.)
                        let next = queue.lock().expect("queue").pop_front();
                        let Some(i) = next else { break };
                        let r = f(&seats[i]);
                        results.lock().expect("results").push((i, r));
                    }
                });
            }
        }
    });
    let mut results = results.into_inner().expect("results");
    results.sort_by_key(|(i, _)| *i);
    results
        .into_iter()
        .map(|(i, r)| (seats[i].clone(), r))
        .collect()
}

/// Progress of one seat: node and object names tagged `s1/`, notes `s1: `.
pub struct Tagged<'a> {
    pub inner: &'a dyn Progress,
    pub seat: &'a str,
}

impl Progress for Tagged<'_> {
    fn event(&self, e: Event) {
        let tag = |s: &str| format!("{}/{s}", self.seat);
        let e = match e {
            Event::Work(mut w) => {
                w.name = tag(&w.name);
                Event::Work(w)
            }
            Event::Step(mut s) => {
                s.node = tag(&s.node);
                Event::Step(s)
            }
            Event::Check(mut c) => {
                c.node = tag(&c.node);
                Event::Check(c)
            }
            Event::Note(text) => Event::Note(format!("{}: {text}", self.seat)),
        };
        self.inner.event(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn seat(instance: &str, uri: &str) -> Seat {
        Seat {
            instance: instance.into(),
            uri: uri.into(),
        }
    }

    #[test]
    fn each_seat_bounds_the_work_per_host_and_keeps_the_seat_order() {
        let seats: Vec<Seat> = (1..=6)
            .map(|i| seat(&format!("s{i}"), if i % 2 == 0 { "b" } else { "a" }))
            .collect();
        let running: BTreeMap<&str, AtomicUsize> =
            [("a", AtomicUsize::new(0)), ("b", AtomicUsize::new(0))].into();
        let peak: BTreeMap<&str, AtomicUsize> =
            [("a", AtomicUsize::new(0)), ("b", AtomicUsize::new(0))].into();
        let results = each_seat(&seats, 2, |s| {
            let host = s.uri.as_str();
            let now = running[host].fetch_add(1, Ordering::SeqCst) + 1;
            peak[host].fetch_max(now, Ordering::SeqCst);
            // Stay until a second job of the host runs (bounded: the last one runs alone).
            for _ in 0..100 {
                if running[host].load(Ordering::SeqCst) >= 2 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            std::thread::sleep(Duration::from_millis(20));
            running[host].fetch_sub(1, Ordering::SeqCst);
            if s.instance == "s4" {
                return Err(Failure::host("s4 broke"));
            }
            Ok(s.instance.clone())
        });
        let order: Vec<&str> = results.iter().map(|(s, _)| s.instance.as_str()).collect();
        assert_eq!(order, ["s1", "s2", "s3", "s4", "s5", "s6"]);
        assert!(
            results[3].1.is_err() && results[4].1.is_ok(),
            "one failure stops no other"
        );
        for host in ["a", "b"] {
            assert_eq!(
                peak[host].load(Ordering::SeqCst),
                2,
                "{host}: two at once, no more"
            );
        }
    }

    #[derive(Default)]
    struct Events(Mutex<Vec<Event>>);

    impl Progress for Events {
        fn event(&self, e: Event) {
            self.0.lock().unwrap().push(e);
        }
    }

    #[test]
    fn a_seats_progress_names_the_seat() {
        let events = Events::default();
        let s3 = seat("s3", "a");
        let p = tagged(&events, &s3);
        let step = crate::progress::StepEvent {
            node: "controller".into(),
            step: "sql",
            outcome: crate::progress::Outcome::Ok,
            elapsed: Duration::ZERO,
        };
        p.event(step.into());
        p.event(crate::progress::Work::running("node", "compute1").into());
        p.event(Event::Note("resuming".into()));
        let got: Vec<String> = events
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect();
        assert!(got[0].contains(r#""node":"s3/controller""#), "{got:?}");
        assert!(got[1].contains(r#""name":"s3/compute1""#), "{got:?}");
        assert!(got[2].contains(r#""text":"s3: resuming""#), "{got:?}");
    }
}

//! A class: N instances of one lab ([`crate::model::instance`]) spread over libvirt hosts. Pure:
//! the room each host has ([`Room`], read through libvirt elsewhere), what one instance needs
//! ([`Need`]), the placement ([`place`]) and the class file that records it ([`ClassFile`]).

use crate::model::Lab;

/// vCPUs a host may give guests per CPU it has: guests of a lab idle most of the time.
pub const VCPU_OVERCOMMIT: u32 = 2;

/// What a host can still give guests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    pub uri: String,
    /// Memory for guests, in bytes (never overcommitted).
    pub memory: u64,
    /// vCPUs left: [`VCPU_OVERCOMMIT`] per host CPU, less those of the running domains.
    pub vcpus: i64,
}

/// What one instance of a lab takes: the sum over its nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub memory: u64,
    pub vcpus: u32,
}

impl Need {
    pub fn of(lab: &Lab) -> Need {
        Need {
            memory: lab.nodes.iter().map(|n| n.memory.bytes()).sum(),
            vcpus: lab.nodes.iter().map(|n| n.vcpus).sum(),
        }
    }
}

/// Where the class's instances live, in `STATE/classes/<class>.toml`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassFile {
    /// The lab, as `--lab` takes it (a shipped lab's name or an absolute path).
    pub lab: String,
    pub instances: Vec<Seat>,
}

/// One instance of the class and its host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seat {
    pub instance: String,
    pub uri: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClassError {
    #[error(
        "no host has room for instance {instance} ({need_mib} MiB, {need_vcpus} vCPUs; left: {left}): add a host with --hosts, or ask for fewer with --count"
    )]
    NoRoom {
        instance: String,
        need_mib: u64,
        need_vcpus: u32,
        left: String,
    },
    #[error("there is no class {0} here: `lab class up --hosts URI,... --count N` makes it")]
    NoClass(String),
    #[error("class {class} has no instance {instance}: `lab class status` lists them")]
    NoSuchSeat { class: String, instance: String },
}

impl crate::failure::Classify for ClassError {
    fn class(&self) -> crate::failure::ExitClass {
        crate::failure::ExitClass::Host
    }
}

/// The instance names of a class of `count`: `s1` ... `sN`.
pub fn seat_names(count: usize) -> Vec<String> {
    (1..=count).map(|i| format!("s{i}")).collect()
}

/// Places each of `instances` on the host with the most memory left that has room for `need`
/// (memory and vCPUs; ties: more vCPUs, then the earlier host), taking its share from the host.
pub fn place(rooms: &[Room], need: Need, instances: &[String]) -> Result<Vec<Seat>, ClassError> {
    let mut left = rooms.to_vec();
    let mut seats = Vec::new();
    for instance in instances {
        let fits = |r: &&mut Room| r.memory >= need.memory && r.vcpus >= i64::from(need.vcpus);
        let best = left
            .iter_mut()
            .enumerate()
            .filter(|(_, r)| fits(r))
            .max_by_key(|(i, r)| (r.memory, r.vcpus, std::cmp::Reverse(*i)));
        let Some((_, room)) = best else {
            return Err(ClassError::NoRoom {
                instance: instance.clone(),
                need_mib: need.memory >> 20,
                need_vcpus: need.vcpus,
                left: describe(&left),
            });
        };
        room.memory -= need.memory;
        room.vcpus -= i64::from(need.vcpus);
        seats.push(Seat {
            instance: instance.clone(),
            uri: room.uri.clone(),
        });
    }
    Ok(seats)
}

fn describe(rooms: &[Room]) -> String {
    let each: Vec<String> = rooms
        .iter()
        .map(|r| format!("{} {} MiB {} vCPUs", r.uri, r.memory >> 20, r.vcpus))
        .collect();
    each.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn room(uri: &str, gib: u64, vcpus: i64) -> Room {
        Room {
            uri: uri.into(),
            memory: gib * GIB,
            vcpus,
        }
    }

    fn hosts(seats: &[Seat]) -> Vec<&str> {
        seats.iter().map(|s| s.uri.as_str()).collect()
    }

    const LAB: Need = Need {
        memory: 6 * GIB,
        vcpus: 2,
    };

    #[test]
    fn instances_go_where_most_memory_is_left() {
        let rooms = [room("a", 16, 16), room("b", 32, 16)];
        let seats = place(&rooms, LAB, &seat_names(5)).unwrap();
        // b: 32 -> 26 -> 20 -> 14; then a (16 > 14) -> 10; then b (14 > 10).
        assert_eq!(hosts(&seats), ["b", "b", "b", "a", "b"]);
        assert_eq!(seats[4].instance, "s5");
    }

    #[test]
    fn vcpus_limit_a_host_with_memory_to_spare() {
        let rooms = [room("big", 64, 4), room("small", 12, 16)];
        let seats = place(&rooms, LAB, &seat_names(4)).unwrap();
        assert_eq!(hosts(&seats), ["big", "big", "small", "small"]);
    }

    #[test]
    fn a_class_that_does_not_fit_says_what_is_left() {
        let rooms = [room("a", 8, 8), room("b", 7, 8)];
        let err = place(&rooms, LAB, &seat_names(3)).unwrap_err();
        assert_eq!(
            err,
            ClassError::NoRoom {
                instance: "s3".into(),
                need_mib: 6144,
                need_vcpus: 2,
                left: "a 2048 MiB 6 vCPUs, b 1024 MiB 6 vCPUs".into(),
            }
        );
        assert!(err.to_string().contains("--hosts"), "{err}");
    }
}

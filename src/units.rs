//! Small value types of the lab file: byte sizes, IPv4 networks and MAC addresses.
//! Each parses from the text a student types and prints back the same way. A bottom module: it
//! imports nothing of the crate, so `image` and `model` both build on it; `model::units`
//! re-exports it.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// A size in bytes, written with a unit: `512MiB`, `4GiB`, `5GB`, `10G`.
/// Binary units (KiB, MiB, GiB, TiB) are powers of 1024; decimal ones (KB, MB, GB, TB) powers
/// of 1000; a bare letter (K, M, G, T) is binary, as libvirt and qemu-img read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const GIB: u64 = 1 << 30;
    pub const MIB: u64 = 1 << 20;

    pub fn bytes(self) -> u64 {
        self.0
    }

    pub fn mib(self) -> u64 {
        self.0.div_ceil(Self::MIB)
    }

    /// An approximate, readable form for reports: `22.5GiB`, `512.0MiB`.
    pub fn human(self) -> String {
        let (unit, div) = if self.0 >= Self::GIB {
            ("GiB", Self::GIB)
        } else {
            ("MiB", Self::MIB)
        };
        format!("{:.1}{unit}", self.0 as f64 / div as f64)
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{s:?} is not a size: write a number and a unit, like 4GiB"))?;
        let mult: u64 = match unit.trim() {
            "B" => 1,
            "K" | "KiB" => 1 << 10,
            "M" | "MiB" => 1 << 20,
            "G" | "GiB" => 1 << 30,
            "T" | "TiB" => 1 << 40,
            "KB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            "TB" => 1_000_000_000_000,
            "" => return Err(format!("{s:?} has no unit: write it like 4GiB or 5GB")),
            other => {
                return Err(format!(
                    "{s:?} has an unknown unit {other:?}: use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB"
                ));
            }
        };
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| format!("{s:?} is too large"))
    }
}

impl fmt::Display for ByteSize {
    /// The shortest exact form: `4GiB`, `5GB`, `1536MiB`, else bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 8] = [
            (1 << 40, "TiB"),
            (1_000_000_000_000, "TB"),
            (1 << 30, "GiB"),
            (1_000_000_000, "GB"),
            (1 << 20, "MiB"),
            (1_000_000, "MB"),
            (1 << 10, "KiB"),
            (1_000, "KB"),
        ];
        for (mult, unit) in UNITS {
            if self.0 >= mult && self.0.is_multiple_of(mult) {
                return write!(f, "{}{unit}", self.0 / mult);
            }
        }
        write!(f, "{}B", self.0)
    }
}

/// An IPv4 network in CIDR form, `10.0.0.0/24`. The address must be the network address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    pub fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    pub fn netmask(self) -> Ipv4Addr {
        Ipv4Addr::from(self.mask())
    }

    pub fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network)
    }

    pub fn broadcast(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !self.mask())
    }

    /// The first usable host address (`.1` of a /24).
    pub fn first_host(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    pub fn overlaps(self, other: Cidr) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not an IPv4 network: write it like 10.0.0.0/24");
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let network: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) {
            return Err(format!(
                "{s:?} has prefix /{prefix}: use a prefix from /8 to /30"
            ));
        }
        let cidr = Cidr { network, prefix };
        if u32::from(network) & cidr.mask() != u32::from(network) {
            let fixed = Ipv4Addr::from(u32::from(network) & cidr.mask());
            return Err(format!(
                "{s:?} has host bits set: write the network address, {fixed}/{prefix}"
            ));
        }
        Ok(cidr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// A MAC address, written `52:54:00:12:34:56`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// A locally stable MAC in qemu's 52:54:00 range, derived from lab, node and network names,
    /// so that every run of the same lab gives every NIC the same address.
    pub fn derive(lab: &str, node: &str, network: &str) -> Mac {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("lab-mac\0{lab}\0{node}\0{network}").as_bytes());
        Mac([0x52, 0x54, 0x00, digest[0], digest[1], digest[2]])
    }
}

impl FromStr for Mac {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a MAC address: write it like 52:54:00:12:34:56");
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() != 6 {
            return Err(bad());
        }
        let mut mac = [0u8; 6];
        for (byte, part) in mac.iter_mut().zip(&parts) {
            if part.len() != 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if mac[0] & 1 == 1 {
            return Err(format!(
                "{s:?} is a multicast MAC: the first byte must be even, like 52:54:00:..."
            ));
        }
        Ok(Mac(mac))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_binary_and_decimal_units() {
        assert_eq!("4GiB".parse::<ByteSize>().unwrap().0, 4 << 30);
        assert_eq!("5GB".parse::<ByteSize>().unwrap().0, 5_000_000_000);
        assert_eq!("512M".parse::<ByteSize>().unwrap().0, 512 << 20);
        assert!("4".parse::<ByteSize>().unwrap_err().contains("no unit"));
        assert!(
            "4XB"
                .parse::<ByteSize>()
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!("GiB".parse::<ByteSize>().is_err());
    }

    #[test]
    fn sizes_print_shortest_exact_form() {
        assert_eq!(ByteSize(4 << 30).to_string(), "4GiB");
        assert_eq!(ByteSize(5_000_000_000).to_string(), "5GB");
        assert_eq!(ByteSize(1536 << 20).to_string(), "1536MiB");
        assert_eq!(ByteSize(7).to_string(), "7B");
        assert_eq!(ByteSize(23553016 * 1024).human(), "22.5GiB");
        assert_eq!(ByteSize(512 << 20).human(), "512.0MiB");
    }

    #[test]
    fn cidr_contains_and_overlaps() {
        let c: Cidr = "10.0.0.0/24".parse().unwrap();
        assert!(c.contains("10.0.0.11".parse().unwrap()));
        assert!(!c.contains("10.0.1.11".parse().unwrap()));
        assert_eq!(c.netmask().to_string(), "255.255.255.0");
        assert_eq!(c.broadcast().to_string(), "10.0.0.255");
        assert!(c.overlaps("10.0.0.128/25".parse().unwrap()));
        assert!(!c.overlaps("10.0.1.0/24".parse().unwrap()));
        assert!(
            "10.0.0.1/24"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("10.0.0.0/24")
        );
        assert!("10.0.0.0/31".parse::<Cidr>().is_err());
    }

    #[test]
    fn macs_derive_stably_and_differ_per_nic() {
        let a = Mac::derive("ocata", "controller", "internal");
        assert_eq!(a, Mac::derive("ocata", "controller", "internal"));
        assert_ne!(a, Mac::derive("ocata", "controller", "external"));
        assert_eq!(&a.0[..3], &[0x52, 0x54, 0x00]);
        assert_eq!(a.to_string().parse::<Mac>().unwrap(), a);
        assert!("01:00:00:00:00:00".parse::<Mac>().is_err());
    }
}

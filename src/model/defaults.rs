//! Defaults: a pure step that fills every optional key of a lab file, so validation sees
//! one complete value. Filled values carry an empty span (they are in no file).

use toml::Spanned;

use super::file::LabFile;

pub const USER: &str = "lab";
pub const DOMAIN: &str = "lab.test";
pub const VCPUS: i64 = 1;
pub const MEMORY: &str = "2GiB";
pub const DISK: &str = "10GB";

fn fill<T>(slot: &mut Option<Spanned<T>>, value: T) {
    if slot.is_none() {
        *slot = Some(Spanned::new(0..0, value));
    }
}

pub fn apply(mut file: LabFile) -> LabFile {
    fill(&mut file.user, USER.to_string());
    fill(&mut file.domain, DOMAIN.to_string());
    for node in &mut file.nodes {
        fill(&mut node.vcpus, VCPUS);
        fill(&mut node.memory, MEMORY.to_string());
        fill(&mut node.disk, DISK.to_string());
    }
    file
}

//! The `debian12` recipe as data (`profiles/debian12/image/`), compiled in, and the pure functions
//! derived from it: package lists, the files dropped into the image, the recipe hash and
//! the grub.cfg fix-up.

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// `profiles/debian12/image/recipe.toml`.
const RECIPE_TOML: &str = include_str!("../../profiles/debian12/image/recipe.toml");

/// Files copied into the image: (path inside the image, content). All mode 0644.
pub const FILES: [(&str, &str); 5] = [
    (
        "etc/cloud/cloud.cfg.d/90_lab_datasource.cfg",
        include_str!(
            "../../profiles/debian12/image/files/etc/cloud/cloud.cfg.d/90_lab_datasource.cfg"
        ),
    ),
    (
        "etc/default/grub.d/90-lab.cfg",
        include_str!("../../profiles/debian12/image/files/etc/default/grub.d/90-lab.cfg"),
    ),
    (
        "etc/hostname",
        include_str!("../../profiles/debian12/image/files/etc/hostname"),
    ),
    (
        "etc/hosts",
        include_str!("../../profiles/debian12/image/files/etc/hosts"),
    ),
    (
        "etc/resolv.conf",
        include_str!("../../profiles/debian12/image/files/etc/resolv.conf"),
    ),
];

/// The build code itself (without its tests): part of the hash, so a change in how the image
/// is made rebuilds it.
const CODE: [&str; 5] = [
    include_str!("mod.rs"),
    include_str!("steps.rs"),
    include_str!("cmd.rs"),
    include_str!("disk.rs"),
    include_str!("recipe.rs"),
];

/// The parsed recipe.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// Debian suite (`bookworm`).
    pub suite: String,
    /// Default Debian mirror.
    pub mirror: String,
    /// UUID given to the root filesystem.
    pub root_uuid: String,
    /// Packages of every variant.
    pub packages: Vec<String>,
    /// The `full` variant's additions.
    pub full: Full,
}

/// What the `full` variant adds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Full {
    pub packages: Vec<String>,
    /// systemd units disabled after installation.
    pub disabled_services: Vec<String>,
}

impl Recipe {
    /// The recipe compiled into this binary (checked by a unit test).
    pub fn debian12() -> Recipe {
        toml::from_str(RECIPE_TOML).expect("profiles/debian12/image/recipe.toml parses")
    }

    /// Packages to install for the variant.
    pub fn packages(&self, full: bool) -> Vec<String> {
        let mut all = self.packages.clone();
        if full {
            all.extend(self.full.packages.iter().cloned());
        }
        all
    }

    /// Services to disable for the variant.
    pub fn disabled_services(&self, full: bool) -> &[String] {
        if full {
            &self.full.disabled_services
        } else {
            &[]
        }
    }
}

/// Hash of the recipe of a variant: recipe.toml, every dropped file, the build code and the
/// variant. 16 hex digits; an image built from the same hash is the same image.
pub fn recipe_hash(full: bool) -> String {
    hash_parts(RECIPE_TOML, &FILES, &CODE.map(without_tests), full)
}

/// Source text before its unit tests: editing a test does not invalidate built images.
fn without_tests(source: &str) -> &str {
    // The needle spans a line break, so this line itself does not match it.
    source
        .split("\n#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or(source)
}

/// [`recipe_hash`] over explicit parts (so tests can change one part).
fn hash_parts(recipe: &str, files: &[(&str, &str)], code: &[&str], full: bool) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(b"lab-image-recipe-1");
    field(recipe.as_bytes());
    for (path, text) in files {
        field(path.as_bytes());
        field(text.as_bytes());
    }
    code.iter().for_each(|c| field(c.as_bytes()));
    field(if full { b"full" } else { b"base" });
    let d = h.finalize();
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// /etc/fstab of the image: the root filesystem by UUID.
pub fn fstab(root_uuid: &str) -> String {
    format!("UUID={root_uuid} / ext4 errors=remount-ro 0 1\n")
}

/// grub.cfg with every `root=<device>` kernel argument replaced by `root=UUID=<uuid>`.
///
/// Without udev on the build host, grub-mkconfig finds no /dev/disk/by-uuid link and writes
/// the loop partition (`root=/dev/loop3p1`), which does not exist in the guest.
pub fn rewrite_root(cfg: &str, device: &str, uuid: &str) -> String {
    let from = format!("root={device}");
    let to = format!("root=UUID={uuid}");
    cfg.lines()
        .map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            if words.contains(&from.as_str()) {
                let fixed: Vec<&str> = words
                    .iter()
                    .map(|w| if *w == from { to.as_str() } else { w })
                    .collect();
                fixed.join(" ")
            } else {
                line.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_parses_and_lists_the_brief_packages() {
        let r = Recipe::debian12();
        assert_eq!(r.suite, "bookworm");
        let base = r.packages(false);
        for p in [
            "linux-image-cloud-amd64",
            "cloud-init",
            "net-tools",
            "grub-pc",
        ] {
            assert!(base.iter().any(|b| b == p), "{p}");
        }
        let full = r.packages(true);
        assert!(full.iter().any(|p| p == "rabbitmq-server"));
        assert!(!base.iter().any(|p| p == "rabbitmq-server"));
        assert!(r.disabled_services(false).is_empty());
        assert_eq!(r.root_uuid.len(), 36);
    }

    #[test]
    fn recipe_hash_is_stable_and_follows_every_part() {
        let files = [("etc/a", "x")];
        let one = hash_parts("r", &files, &["code"], false);
        assert_eq!(one, hash_parts("r", &files, &["code"], false));
        assert_eq!(one.len(), 16);
        assert_ne!(one, hash_parts("r2", &files, &["code"], false));
        assert_ne!(one, hash_parts("r", &[("etc/a", "y")], &["code"], false));
        assert_ne!(one, hash_parts("r", &[("etc/b", "x")], &["code"], false));
        assert_ne!(one, hash_parts("r", &files, &["code2"], false));
        assert_ne!(one, hash_parts("r", &files, &["code"], true));
        assert_ne!(recipe_hash(false), recipe_hash(true));
        assert_eq!(without_tests("code\n#[cfg(test)]\nmod tests {}"), "code");
        for code in CODE {
            let cut = without_tests(code).len() < code.len();
            assert_eq!(cut, code.contains("#[cfg(test)]\nmod tests {"));
        }
        assert!(without_tests(CODE[4]).contains("pub fn rewrite_root"));
        assert_eq!(recipe_hash(true), recipe_hash(true));
    }

    #[test]
    fn grub_root_becomes_the_uuid_and_nothing_else_changes() {
        let cfg = "\tsearch --no-floppy --fs-uuid --set=root abcd\n\
                   \tlinux\t/boot/vmlinuz-6.1 root=/dev/loop3p1 ro console=ttyS0\n\
                   menuentry 'x' {\n";
        let out = rewrite_root(cfg, "/dev/loop3p1", "abcd");
        assert!(out.contains("\tlinux\t/boot/vmlinuz-6.1 root=UUID=abcd ro console=ttyS0\n"));
        assert!(!out.contains("/dev/loop3p1"));
        assert!(out.starts_with("\tsearch --no-floppy --fs-uuid --set=root abcd\n"));
        assert_eq!(rewrite_root(cfg, "/dev/loop30p1", "abcd"), cfg);
    }

    /// Every file under profiles/debian12/image/files/ is in [`FILES`] (and so in the hash), and
    /// every entry of [`FILES`] is that file.
    #[test]
    fn files_list_is_the_whole_files_folder() {
        let base =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/debian12/image/files");
        let mut found = Vec::new();
        let mut dirs = vec![base.clone()];
        while let Some(dir) = dirs.pop() {
            for e in std::fs::read_dir(&dir).unwrap().flatten() {
                if e.path().is_dir() {
                    dirs.push(e.path());
                } else {
                    let rel = e.path().strip_prefix(&base).unwrap().to_owned();
                    found.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        found.sort();
        let mut listed: Vec<String> = FILES.iter().map(|(p, _)| p.to_string()).collect();
        listed.sort();
        assert_eq!(found, listed);
        for (p, text) in FILES {
            assert_eq!(std::fs::read_to_string(base.join(p)).unwrap(), text, "{p}");
        }
    }

    #[test]
    fn dropped_files_are_the_recipe_folder() {
        let ds = FILES[0].1;
        assert!(ds.contains("datasource_list: [NoCloud, None]"));
        assert!(FILES[1].1.contains("GRUB_TIMEOUT=0") && FILES[1].1.contains("console=ttyS0"));
        assert_eq!(fstab("u"), "UUID=u / ext4 errors=remount-ro 0 1\n");
    }
}

//! Every name `lab` gives to something outside its memory: libvirt objects, files of a plan.
//! One module, so the names cannot drift between the code that creates and the code that finds.

/// XML namespace of the `<metadata>` element that marks a libvirt object as a lab's.
pub const METADATA_NS: &str = "https://lab.invalid/xmlns/lab/1";
/// Prefix used for that namespace in libvirt XML.
pub const METADATA_PREFIX: &str = "lab";
/// Version of the metadata and naming scheme, stored in each object's metadata.
pub const FORMAT_VERSION: u32 = 1;

/// A per-user root directory: `$own` when set and not empty, else `$xdg/lab`, else
/// `$HOME/<home>` (the XDG base directory rule; `None` without any of them).
pub fn user_root(own: &str, xdg: &str, home: &str) -> Option<std::path::PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
    };
    var(own)
        .or_else(|| var(xdg).map(|p| p.join("lab")))
        .or_else(|| var("HOME").map(|p| p.join(home)))
}

/// libvirt domain of a node: `lab-<lab>-<node>`.
pub fn domain(lab: &str, node: &str) -> String {
    format!("lab-{lab}-{node}")
}

/// libvirt network: `lab-<lab>-<network>`.
pub fn network(lab: &str, net: &str) -> String {
    format!("lab-{lab}-{net}")
}

/// Linux bridge of a network: at most 15 characters, so a short hash of lab and network.
pub fn bridge(lab: &str, net: &str) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("{lab}\0{net}").as_bytes());
    format!("labbr{:02x}{:02x}{:02x}{:02x}", d[0], d[1], d[2], d[3])
}

/// libvirt storage pool holding a lab's overlays and seeds: `lab-<lab>`.
pub fn pool(lab: &str) -> String {
    format!("lab-{lab}")
}

/// Volume of a node's disk overlay.
pub fn overlay_volume(node: &str) -> String {
    format!("{node}.qcow2")
}

/// Volume of a node's cloud-init seed ISO.
pub fn seed_volume(node: &str) -> String {
    format!("{node}-seed.iso")
}

/// An empty volume beside an uploaded volume (image, seed), made only once the upload
/// finished: a volume without it is half-made (a run was stopped) and is made again.
/// Kept in the pool, so it is read back over the libvirt connection (remote hosts too).
pub fn complete_marker(volume: &str) -> String {
    format!("{volume}.complete")
}

/// An empty volume beside a whole uploaded image, naming its sha256: another lab on the
/// same host holding the same image copies it from this one rather than upload it again.
pub fn sha256_marker(volume: &str, sha256: &str) -> String {
    format!("{volume}.sha256-{}", sha256.to_ascii_lowercase())
}

/// Volume of the image in the lab's pool (the overlays' backing store).
pub fn image_volume(image: &str) -> String {
    format!("image-{image}.qcow2")
}

/// File beside a built image recording the recipe hash it was built from
/// (`lab image build`): `<image file>.recipe`.
pub fn image_recipe_file(image_file: &str) -> String {
    format!("{image_file}.recipe")
}

/// libvirt storage pool holding a lab's serial console logs: `lab-<lab>.logs` (a dot, which
/// no lab name has, so it never is another lab's pool). Its directory is in the
/// hypervisor's log directory, where libvirt's log daemon writes; the logs are read back as
/// its volumes over the connection (remote hosts too).
pub fn log_pool(lab: &str) -> String {
    format!("lab-{lab}.logs")
}

/// Serial console log of a node: a file of the lab's log pool ([`log_pool`]).
pub fn serial_log(node: &str) -> String {
    format!("{node}-serial.log")
}

/// cloud-init instance-id: changes only when the node is rebuilt (a new generation).
pub fn instance_id(lab: &str, node: &str, generation: u64) -> String {
    format!("lab-{lab}-{node}-{generation}")
}

/// Files of `lab plan --out DIR`, relative to DIR.
pub mod plan {
    pub fn network_xml(net: &str) -> String {
        format!("networks/{net}.xml")
    }
    pub fn node_dir(node: &str) -> String {
        format!("nodes/{node}")
    }
    pub const NODE_FILES: [&str; 8] = [
        "domain.xml",
        "overlay-volume.xml",
        "snapshot.xml",
        "user-data",
        "meta-data",
        "network-config",
        "seed.iso",
        "provision.sh",
    ];
}

/// Files of the per-user state directory (`$LAB_STATE_DIR`, else `$XDG_STATE_HOME/lab`, else
/// `~/.local/state/lab`).
pub mod state {
    /// Directory of one lab's state, relative to the state root.
    pub fn lab_dir(lab: &str) -> String {
        lab.to_string()
    }
    /// Lock file of one lab, beside its directory so `down` can remove the directory while
    /// holding the lock.
    pub fn lock(lab: &str) -> String {
        format!("{lab}.lock")
    }
    /// The 32-byte secrets seed (hex), mode 0600: every key and password derives from it.
    pub const SEED: &str = "seed";
    /// The lab file as `up` used it, read when the current lab's own file is gone.
    pub const LAB_FILE: &str = "lab.toml";
    /// Where an instance lives ([`crate::model::instance::Placement`], TOML): its name and
    /// the subnet of each nat network, chosen by the `up` that made it.
    pub const PLACEMENT: &str = "instance.toml";
    /// Written when `lab start` begins and removed once every node is back with its clock
    /// set: a `start` that finds it finishes the one that was cut short (its nodes may run
    /// already, booting or with the clocks they had when they stopped).
    pub const START_PENDING: &str = "start.pending";
    /// In the state root: the class file of `lab class` ([`crate::class::ClassFile`], TOML):
    /// the lab and each instance's host.
    pub fn class_file(class: &str) -> String {
        format!("{CLASSES_DIR}/{class}.toml")
    }
    /// In the state root: the directory of the class files.
    pub const CLASSES_DIR: &str = "classes";
    /// In the state root: the lock held while an instance's subnets are chosen.
    pub const PLACEMENT_LOCK: &str = "instances.lock";
    /// In the state root: the lab the last `lab up` chose, which bare commands default to.
    /// Its dot keeps it apart from lab directories (lab names have none).
    pub const CURRENT: &str = "current.txt";
}

/// Files of a lab's state directory that users' own tools read (written by `up`).
pub mod access {
    /// The lab user's private key, 0600.
    pub const IDENTITY: &str = "id_ed25519";
    /// The pinned host keys of the nodes.
    pub const KNOWN_HOSTS: &str = "known_hosts";
}

/// Files of the per-user image cache (`$LAB_CACHE_DIR`, else `$XDG_CACHE_HOME/lab`, else
/// `~/.cache/lab`), relative to the cache root.
pub mod cache {
    /// Directory of the cached base images.
    pub const IMAGES_DIR: &str = "images";
    /// A cached base image: a standalone qcow2 file.
    pub fn image(name: &str) -> String {
        format!("{IMAGES_DIR}/{name}.qcow2")
    }
    /// The record that vouches for a cached image: JSON with its sha256, size and mtime.
    /// While the image keeps that size and mtime it is trusted without hashing it again.
    pub fn record(name: &str) -> String {
        format!("{IMAGES_DIR}/{name}.qcow2.sha256.json")
    }
    /// A download in progress, resumed by the next pull.
    pub fn partial(name: &str) -> String {
        format!("{IMAGES_DIR}/{name}.qcow2.part")
    }
    /// How the copy an import writes in [`IMAGES_DIR`] begins (a random suffix follows);
    /// it is renamed into place, or removed.
    pub fn import_temp_prefix(name: &str) -> String {
        format!(".{name}.qcow2.import.")
    }
}

/// The per-node command log of provisioning and verification, in a lab's state directory.
pub fn node_log(node: &str) -> String {
    format!("logs/{node}.log")
}

//! Per-lab secrets: the lab user's SSH key, each node's SSH host key (injected through
//! cloud-init so `lab` can pin it from the first connection) and the guide's passwords.
//! All are derived from one 32-byte seed: random for a real lab (kept 0600 in the lab state),
//! fixed in golden tests.

use std::collections::BTreeMap;
use std::fmt;

use russh::keys::PrivateKey;
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::Ed25519Keypair;
use sha2::{Digest, Sha256};

use crate::model::Lab;

/// The password names of the Ocata install guide's password table, in its order, plus the
/// database root password the guide asks for during the secure installation.
pub const PASSWORD_NAMES: [&str; 16] = [
    "DB_ROOT_PASS",
    "ADMIN_PASS",
    "CINDER_DBPASS",
    "CINDER_PASS",
    "DASH_DBPASS",
    "DEMO_PASS",
    "GLANCE_DBPASS",
    "GLANCE_PASS",
    "KEYSTONE_DBPASS",
    "METADATA_SECRET",
    "NEUTRON_DBPASS",
    "NEUTRON_PASS",
    "NOVA_DBPASS",
    "NOVA_PASS",
    "PLACEMENT_PASS",
    "RABBIT_PASS",
];

/// An Ed25519 key pair in OpenSSH text forms. Its `Debug` shows the public key only.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPair {
    /// `-----BEGIN OPENSSH PRIVATE KEY-----` ... (unencrypted).
    pub private_openssh: String,
    /// `ssh-ed25519 AAAA... comment`.
    pub public_openssh: String,
}

impl KeyPair {
    fn from_seed(seed: [u8; 32], comment: &str) -> KeyPair {
        let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
        key.set_comment(comment);
        let private_openssh = key
            .to_openssh(LineEnding::LF)
            .expect("ed25519 keys always encode")
            .to_string();
        let public_openssh = key
            .public_key()
            .to_openssh()
            .expect("ed25519 keys always encode");
        KeyPair {
            private_openssh,
            public_openssh,
        }
    }
}

/// What `{:?}` shows in place of a secret value.
const REDACTED: &str = "<redacted>";

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("private_openssh", &REDACTED)
            .field("public_openssh", &self.public_openssh)
            .finish()
    }
}

/// Every secret of a lab. Its `Debug` shows public keys, the password names and the owner,
/// never a private key or a password (so neither does that of [`RenderContext`]).
///
/// [`RenderContext`]: crate::render::RenderContext
#[derive(Clone, PartialEq, Eq)]
pub struct LabSecrets {
    pub user_key: KeyPair,
    /// Host key per node name.
    pub host_keys: BTreeMap<String, KeyPair>,
    /// Password per name of [`PASSWORD_NAMES`]: 20 hex digits, like `openssl rand -hex 10`.
    pub passwords: BTreeMap<&'static str, String>,
    /// Identity of the state that holds the seed (16 hex digits, not secret): written into
    /// the owner metadata of every libvirt object, so two state directories with the same
    /// lab never take each other's objects for their own.
    pub owner: String,
}

impl fmt::Debug for LabSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let passwords: BTreeMap<&str, &str> = self
            .passwords
            .keys()
            .map(|&name| (name, REDACTED))
            .collect();
        f.debug_struct("LabSecrets")
            .field("user_key", &self.user_key)
            .field("host_keys", &self.host_keys)
            .field("passwords", &passwords)
            .field("owner", &self.owner)
            .finish()
    }
}

/// The identity of the state directory whose seed is `seed`, as the owner metadata of every
/// libvirt object it made records it ([`LabSecrets::owner`]).
pub fn owner_of(seed: &[u8; 32]) -> String {
    derive(seed, "owner")[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn derive(seed: &[u8; 32], label: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(seed);
    h.update(label.as_bytes());
    h.finalize().into()
}

impl LabSecrets {
    /// Derives every secret of `lab` from `seed`: the same seed gives the same secrets.
    pub fn from_seed(lab: &Lab, seed: &[u8; 32]) -> LabSecrets {
        let user_key = KeyPair::from_seed(derive(seed, "user-key"), &format!("lab-{}", lab.name));
        let host_keys = lab
            .nodes
            .iter()
            .map(|n| {
                let comment = format!("{}@lab-{}", n.name, lab.name);
                let key =
                    KeyPair::from_seed(derive(seed, &format!("host-key/{}", n.name)), &comment);
                (n.name.clone(), key)
            })
            .collect();
        let passwords = PASSWORD_NAMES
            .iter()
            .map(|&name| {
                let bytes = derive(seed, &format!("password/{name}"));
                let hex: String = bytes[..10].iter().map(|b| format!("{b:02x}")).collect();
                (name, hex)
            })
            .collect();
        let owner = owner_of(seed);
        LabSecrets {
            user_key,
            host_keys,
            passwords,
            owner,
        }
    }

    pub fn password(&self, name: &str) -> &str {
        self.passwords
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not in PASSWORD_NAMES"))
    }
}

/// 32 bytes from the kernel's random source, for a new lab's seed.
pub fn random_seed() -> std::io::Result<[u8; 32]> {
    use std::io::Read;
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut seed)?;
    Ok(seed)
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_shows_no_private_key_and_no_password() {
        let source = crate::model::Source::resolve("openstack-debian12").unwrap();
        let lab = source.load(&crate::image::Catalogue::builtin()).unwrap().0;
        let ctx = crate::plan::context(&lab, crate::render::Accel::Tcg, &[3; 32]);
        let s = &ctx.secrets;
        let shown = [format!("{s:?}"), format!("{s:#?}"), format!("{ctx:?}")];
        let mut secret: Vec<&str> = s.passwords.values().map(String::as_str).collect();
        secret.push(&s.user_key.private_openssh);
        secret.extend(s.host_keys.values().map(|k| k.private_openssh.as_str()));
        for text in &shown {
            assert!(!text.contains("PRIVATE KEY"), "{text}");
            for value in &secret {
                assert!(!text.contains(value), "{value} shown in {text}");
            }
            assert!(text.contains(&s.user_key.public_openssh), "{text}");
            assert!(text.contains("RABBIT_PASS"), "{text}");
            assert!(text.contains(&s.owner), "{text}");
        }
        // Not a vacuous check: the password table's values are there to hide.
        assert!(secret.iter().all(|v| !v.is_empty()));
    }
}

//! The verbs that look at a lab without changing it: `status`, `list`, `snapshot list`,
//! `console`, `logs` and `doctor`, each opening libvirt here so the CLI only prints.

use std::sync::Arc;

use super::{Target, host_dirs, is_local};
use crate::doctor::{self, Finding, Level};
use crate::libvirt::{Console, Hypervisor, Libvirt};
use crate::lifecycle::{self, LabOnHost, Status};
use crate::state::{self, LabState};

/// `lab status`: the lab as libvirt has it now.
pub fn status(t: &Target) -> crate::failure::Result<Status> {
    Ok(lifecycle::status(&t.connect()?, &t.lab)?)
}

/// A lab on the host, and what this machine's state directory knows of it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Listed {
    #[serde(flatten)]
    pub on_host: LabOnHost,
    /// The instance it is, as its state here records (`lab up --instance NAME` made it).
    pub instance: Option<String>,
    /// Whether this machine holds its state (its key, secrets and logs): the state directory
    /// of its name is the one that made it. `false` for a lab another machine or user made,
    /// which only `lab down` acts on from here.
    pub state_here: bool,
}

/// `lab list`: every lab on the host at `uri`, as libvirt has it now.
pub fn list(uri: &str) -> crate::failure::Result<Vec<Listed>> {
    let labs = lifecycle::list_labs(&Libvirt::open(uri)?)?;
    let root = state::root()?;
    Ok(labs
        .into_iter()
        .map(|on_host| {
            let st = LabState::new(&root, &on_host.lab);
            let placement = st.placement().ok().flatten();
            let seed = st.existing_seed().ok().flatten();
            Listed {
                instance: placement.map(|p| p.instance),
                state_here: made_here(seed.as_ref(), on_host.state.as_deref()),
                on_host,
            }
        })
        .collect())
}

/// Whether the state directory with `seed` made the objects whose metadata records the
/// identity `made_by` (objects that record none: any state of the lab's name counts).
fn made_here(seed: Option<&[u8; 32]>, made_by: Option<&str>) -> bool {
    match (seed, made_by) {
        (Some(seed), Some(made_by)) => crate::secrets::owner_of(seed) == made_by,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// `lab snapshot list`: the lab-wide snapshots, oldest first.
pub fn snapshots(t: &Target) -> crate::failure::Result<Vec<String>> {
    Ok(lifecycle::list_snapshots(&t.connect()?, &t.lab)?)
}

/// `lab console NODE`: the node's domain name and its serial console, opened through libvirt.
pub fn open_console(t: &Target, node: &str) -> crate::failure::Result<(String, Arc<dyn Console>)> {
    let domain = t.domain(node)?;
    let console = Arc::from(t.connect()?.console(&domain)?);
    Ok((domain, console))
}

/// `lab doctor`: every check of [`crate::doctor`] on this host and libvirt.
pub fn doctor(t: &Target) -> crate::failure::Result<Vec<Finding>> {
    let (pool_dir, _) = host_dirs(&t.uri, &t.lab.name, t.pool_root.as_deref());
    let mut findings = vec![doctor::accel(), doctor::nested()];
    match t.connect() {
        Ok(hv) => {
            findings.push(doctor::libvirt(&t.uri, &Ok(())));
            findings.extend(doctor::with_libvirt(&t.lab, &hv, is_local(&t.uri)));
        }
        Err(e) => findings.push(Finding {
            check: "libvirt",
            level: Level::Fail,
            detail: format!("{e:#}"),
            fix: "start libvirtd, join the libvirt group, or pass --connect qemu:///session".into(),
        }),
    }
    if is_local(&t.uri) {
        let root = pool_dir.parent().unwrap_or(&pool_dir);
        findings.push(doctor::disk(&t.lab, root, doctor::free_space(root)));
        findings.push(doctor::traversable(&pool_dir));
    }
    findings.push(doctor::image(
        &t.lab,
        crate::cache::Cache::open()?.path_for(&t.lab.image.name),
    ));
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use super::made_here;

    #[test]
    fn a_lab_is_made_here_only_by_the_state_whose_identity_its_objects_record() {
        let seed = [7u8; 32];
        let ours = crate::secrets::owner_of(&seed);
        assert!(made_here(Some(&seed), Some(&ours)));
        assert!(
            !made_here(Some(&seed), Some("0123456789abcdef")),
            "a state of the same name, another machine's lab"
        );
        assert!(!made_here(None, Some(&ours)), "no state here");
        assert!(
            made_here(Some(&seed), None),
            "objects from before identities"
        );
    }
}

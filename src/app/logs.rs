//! `lab logs`: a node's serial console log, read through libvirt from the lab's log pool
//! (so remote hosts too), and its provisioning log, a file of the state directory.

use super::Target;
use crate::libvirt::{Hypervisor, Libvirt};
use crate::names;

/// One log `lab logs` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSource {
    /// The node's serial console: a volume of the lab's log pool ([`names::log_pool`]).
    Serial { pool: String, volume: String },
    /// The node's provisioning log: every command `lab` ran on it, with its output.
    File(std::path::PathBuf),
}

impl LogSource {
    /// How the log is named in the output.
    pub fn title(&self, uri: &str) -> String {
        match self {
            LogSource::Serial { pool, volume } => format!("{pool}/{volume} on {uri}"),
            LogSource::File(path) => path.display().to_string(),
        }
    }
}

/// The serial console log of `node`, read through libvirt.
pub fn serial_source(lab: &str, node: &str) -> LogSource {
    LogSource::Serial {
        pool: names::log_pool(lab),
        volume: names::serial_log(node),
    }
}

/// The logs of `lab logs NODE` (serial first), each with how far it was read.
pub struct Logs {
    /// Open when a serial log is read.
    hv: Option<Libvirt>,
    uri: String,
    sources: Vec<(LogSource, u64)>,
}

impl Logs {
    /// The node's serial console log (with `serial`) and its provisioning log (with
    /// `provision`). An error when the lab has no such node or libvirt cannot be reached.
    pub fn open(
        t: &Target,
        node: &str,
        serial: bool,
        provision: bool,
    ) -> crate::failure::Result<Logs> {
        t.domain(node)?;
        let mut sources = Vec::new();
        if serial {
            sources.push((serial_source(&t.lab.name, node), 0));
        }
        if provision {
            sources.push((
                LogSource::File(t.state.dir().join(names::node_log(node))),
                0,
            ));
        }
        Ok(Logs {
            hv: if serial { Some(t.connect()?) } else { None },
            uri: t.uri.clone(),
            sources,
        })
    }

    /// What each log holds past what the last call read: its title and the new text, or
    /// why it cannot be read (not written yet, the lab down).
    pub fn read_new(&mut self) -> Vec<(String, Result<String, String>)> {
        let mut out = Vec::new();
        for (source, offset) in &mut self.sources {
            let hv = self.hv.as_ref().map(|h| h as &dyn Hypervisor);
            let read = read_log(hv, source, *offset);
            if let Ok(bytes) = &read {
                *offset += bytes.len() as u64;
            }
            let text = read.map(|b| String::from_utf8_lossy(&b).into_owned());
            out.push((source.title(&self.uri), text));
        }
        out
    }
}

/// A log's bytes from `offset` on, or why it cannot be read (`hv` is needed for a serial
/// log only).
pub fn read_log(
    hv: Option<&dyn Hypervisor>,
    source: &LogSource,
    offset: u64,
) -> Result<Vec<u8>, String> {
    match source {
        LogSource::File(path) => {
            use std::io::{Read, Seek};
            let why = |e: std::io::Error| format!("{e} (the node never ran a command of lab's)");
            let mut file = std::fs::File::open(path).map_err(why)?;
            file.seek(std::io::SeekFrom::Start(offset)).map_err(why)?;
            let mut new = Vec::new();
            file.read_to_end(&mut new).map_err(why)?;
            Ok(new)
        }
        LogSource::Serial { pool, volume } => {
            let hv = hv.ok_or("libvirt is not open")?;
            // Reading the pool refreshes it: a log that appeared since is listed.
            let found = hv.pool(pool).map_err(|e| e.to_string())?;
            let Some(found) = found.filter(|p| p.active) else {
                return Err(format!(
                    "no log pool {pool}: the lab is down, or was made by an older lab (`lab down`, then `lab up`)"
                ));
            };
            if !found.volumes.contains(volume) {
                return Err("not written yet: the node has not started".into());
            }
            hv.read_volume(pool, volume, offset)
                .map_err(|e| e.to_string())
        }
    }
}

/// The last `lines` lines of a node's serial console log, titled; `None` when it cannot be
/// read (for an error message: what it says is not worth a second error).
pub fn serial_tail(t: &Target, node: &str, lines: usize) -> Option<String> {
    let hv = t.connect().ok()?;
    let source = serial_source(&t.lab.name, node);
    let text = String::from_utf8_lossy(&read_log(Some(&hv), &source, 0).ok()?).into_owned();
    let all: Vec<&str> = text.lines().collect();
    Some(format!(
        "{} (last {lines} lines):\n{}",
        source.title(&t.uri),
        all[all.len().saturating_sub(lines)..].join("\n")
    ))
}

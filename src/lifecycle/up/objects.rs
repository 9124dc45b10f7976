//! The lab's networks and domains: defined when missing, started when stopped, reported
//! unchanged when running; one a stopped run's late call made meanwhile is taken as it is.

use super::Run;
use super::rollback::Created;
use crate::libvirt::{LibvirtError, RunState};
use crate::lifecycle::inventory::Inventory;
use crate::lifecycle::{Action, Work, timed};
use crate::model::Node;
use crate::names;
use crate::render::libvirt as xml;

impl Run<'_> {
    /// The lab's object of `name` as libvirt has it now, if ours (to look again after a call
    /// failed because a stopped run's late call made it meanwhile).
    fn ours_now(&self, name: &str) -> Result<Option<crate::libvirt::RunState>, LibvirtError> {
        let inv = Inventory::read(self.hv, &self.lab.name, Some(&self.ctx.secrets.owner))?;
        if let Some((d, _)) = inv
            .our_domains(&self.lab.name)
            .into_iter()
            .find(|(d, _)| d.name == name)
        {
            return Ok(Some(d.state));
        }
        let net = inv
            .our_networks(&self.lab.name)
            .into_iter()
            .find(|(n, _)| n.name == name);
        Ok(net.map(|(n, _)| {
            if n.state {
                RunState::Running
            } else {
                RunState::ShutOff
            }
        }))
    }

    pub(super) fn network(
        &self,
        inv: &Inventory,
        net: &crate::model::Network,
    ) -> Result<(), LibvirtError> {
        let name = names::network(&self.lab.name, &net.name);
        let p = self.progress;
        match inv.network(&name) {
            Some(found) if found.state => {
                p.event(Work::now("network", &name, Action::Unchanged).into());
                return Ok(());
            }
            Some(_) => {}
            None => {
                let xml = xml::network_xml(self.lab, net, self.ctx);
                let made = timed(p, "network", &name, Action::Created, || {
                    self.hv.define_network(&xml)
                });
                match (made, self.ours_now(&name)?) {
                    (Ok(()), _) => self.record(Created::Network(name.clone())),
                    (Err(_), Some(RunState::Running)) => return Ok(()),
                    (Err(_), Some(_)) => {}
                    (Err(e), None) => return Err(e),
                }
            }
        }
        let started = timed(p, "network", &name, Action::Started, || {
            self.hv.start_network(&name)
        });
        match (started, || self.ours_now(&name)) {
            (Ok(()), _) => Ok(()),
            (Err(e), look) => match look()? {
                Some(RunState::Running) => Ok(()),
                _ => Err(e),
            },
        }
    }

    pub(super) fn domain(&self, inv: &Inventory, node: &Node) -> Result<(), LibvirtError> {
        let name = names::domain(&self.lab.name, &node.name);
        let p = self.progress;
        let mut state = inv.domain(&name).map(|d| d.state);
        if state.is_none() {
            let xml = xml::domain_xml(self.lab, node, self.ctx);
            let made = timed(p, "domain", &name, Action::Created, || {
                self.hv.define_domain(&xml)
            });
            match made {
                Ok(()) => self.record(Created::Domain(name.clone())),
                Err(e) => {
                    // "already exists": a stopped run's define finished after we looked.
                    state = Some(self.ours_now(&name)?.ok_or(e)?);
                }
            }
        }
        let start = || {
            let started = self.hv.start_domain(&name);
            match started {
                Err(e) if self.ours_now(&name)? != Some(RunState::Running) => Err(e),
                _ => Ok(()),
            }
        };
        match state {
            Some(RunState::Running) => {
                p.event(Work::now("domain", &name, Action::Unchanged).into());
                Ok(())
            }
            Some(RunState::Paused) => timed(p, "domain", &name, Action::Resumed, || {
                self.hv.resume_domain(&name)
            }),
            _ => timed(p, "domain", &name, Action::Started, start),
        }
    }
}

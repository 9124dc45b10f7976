//! The model of a provisioning step, and the shell helpers every profile builds steps with.
//!
//! A step is data an engine can run over SSH: upload [`Step::files`] and the secrets named in
//! [`Step::secrets`], run [`Step::check`] (exit 0: already done, report `ok`), run
//! [`Step::apply`] only when the check failed, then [`Step::reboot_check`] (exit 0: reboot).
//! Scripts are bash and never contain a secret value: they read `/root/.lab/secrets/NAME`.

use crate::model::Role;

/// Shell quoting lives in the bottom module [`crate::shell`], which `ssh` uses too; re-exported
/// here for the profiles and the callers that reach it through `provision`.
pub use crate::shell::{quote, quote_all};

/// Where the engine uploads each secret a step names, one 0600 file per name.
pub const SECRETS_DIR: &str = "/root/.lab/secrets";
/// Where the engine uploads a step's files: `FILES_DIR/<step id>/<name>`.
pub const FILES_DIR: &str = "/root/.lab/files";

/// Both roles: a step every node runs.
pub const ALL: &[Role] = &[Role::Controller, Role::Compute];
/// The controller only.
pub const CONTROLLER: &[Role] = &[Role::Controller];
/// Compute nodes only.
pub const COMPUTE: &[Role] = &[Role::Compute];

/// One provisioning step of the install guide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Short, unique within a node's plan, e.g. `chrony`.
    pub id: &'static str,
    /// The guide's one-line reason for the step.
    pub reason: &'static str,
    /// The roles the step applies to.
    pub roles: &'static [Role],
    /// A step of another node that must have succeeded first.
    pub after: Option<After>,
    /// Files the engine uploads (over the channel, never through a shell string) before the check.
    pub files: Vec<Upload>,
    /// Names from [`crate::secrets::PASSWORD_NAMES`] the scripts read from [`SECRETS_DIR`].
    pub secrets: Vec<&'static str>,
    /// Bash; exit 0 means the step is already done and `apply` must not run.
    pub check: String,
    /// Bash; makes the check pass.
    pub apply: String,
    /// Bash, run after the step whatever the check said; exit 0 means the node must reboot.
    pub reboot_check: Option<String>,
    /// A check `lab` makes itself, in place of running `check` (which stays what the
    /// transcript shows and a person would run): where `check` boots a VM of its own
    /// (rabbitmqctl: an Erlang VM, seconds under emulation), one conversation is faster.
    pub lab_check: Option<LabCheck>,
}

/// A check `lab` holds itself over a TCP connection the node opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabCheck {
    /// `user` logs in to the broker on the node's 127.0.0.1 with the secret `secret` and
    /// may configure, write and read on `vhost` (a queue declared, a message published and
    /// got back): what `rabbitmqctl list_user_permissions` would show as `.* .* .*`.
    AmqpRights {
        user: &'static str,
        secret: &'static str,
        vhost: &'static str,
    },
}

/// A dependency on another node's step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct After {
    /// The other node's name.
    pub node: String,
    /// The other node's step id.
    pub step: &'static str,
}

/// A file the engine writes on the node before the step's check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// Absolute path on the node (under [`FILES_DIR`]: `apply` installs it where it belongs).
    pub path: String,
    /// Permission bits, e.g. `0o644`.
    pub mode: u32,
    /// The whole content; always ends with a newline.
    pub content: String,
}

impl Step {
    /// A step with empty scripts; the builder methods fill it.
    pub fn new(id: &'static str, reason: &'static str, roles: &'static [Role]) -> Step {
        Step {
            id,
            reason,
            roles,
            after: None,
            files: Vec::new(),
            secrets: Vec::new(),
            check: String::new(),
            apply: String::new(),
            reboot_check: None,
            lab_check: None,
        }
    }

    /// Sets the check script.
    pub fn check(mut self, script: impl Into<String>) -> Step {
        self.check = script.into();
        self
    }

    /// Has the engine make `check` itself, in place of the check script.
    pub fn lab_check(mut self, check: LabCheck) -> Step {
        self.lab_check = Some(check);
        self
    }

    /// Sets the apply script.
    pub fn apply(mut self, script: impl Into<String>) -> Step {
        self.apply = script.into();
        self
    }

    /// Makes the step wait for `step` of node `node`.
    pub fn after(mut self, node: &str, step: &'static str) -> Step {
        self.after = Some(After {
            node: node.to_string(),
            step,
        });
        self
    }

    /// Names a secret the scripts read.
    pub fn secret(mut self, name: &'static str) -> Step {
        debug_assert!(crate::secrets::PASSWORD_NAMES.contains(&name), "{name}");
        self.secrets.push(name);
        self
    }

    /// Adds a file uploaded to [`FILES_DIR`]`/<id>/<name>`.
    pub fn file(mut self, name: &str, mode: u32, content: impl Into<String>) -> Step {
        let content = content.into();
        assert!(
            content.ends_with('\n'),
            "{}/{name} must end with a newline",
            self.id
        );
        self.files.push(Upload {
            path: staged(self.id, name),
            mode,
            content,
        });
        self
    }

    /// Sets the reboot check.
    pub fn reboot_check(mut self, script: impl Into<String>) -> Step {
        self.reboot_check = Some(script.into());
        self
    }

    /// Whether the step applies to a node of `role`.
    pub fn applies_to(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// The path a step's uploaded file `name` lands on.
pub fn staged(step: &str, name: &str) -> String {
    format!("{FILES_DIR}/{step}/{name}")
}

/// The path of a secret's file on the node.
pub fn secret_path(name: &str) -> String {
    format!("{SECRETS_DIR}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_helpers_use_the_staging_path() {
        assert_eq!(
            staged("chrony", "chrony.conf"),
            "/root/.lab/files/chrony/chrony.conf"
        );
        assert_eq!(secret_path("RABBIT_PASS"), "/root/.lab/secrets/RABBIT_PASS");
    }
}

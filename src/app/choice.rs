//! Which lab a command is about, the same way for every verb: `--lab`, else `$LAB_FILE`,
//! else `lab.toml` in the current directory, else the lab the last `lab up` chose (recorded
//! in the state root), else `openstack-ocata`. And the hints that name it.

use std::path::{Path, PathBuf};

use crate::model::{LoadError, Source};
use crate::state::{self, Current};

/// The lab when nothing else says one.
pub const DEFAULT_LAB: &str = "openstack-ocata";
/// The environment variable that names the lab (a file or a shipped lab's name) when
/// `--lab` does not.
pub const LAB_ENV: &str = "LAB_FILE";
/// The lab file a directory may hold, picked up when neither `--lab` nor `$LAB_FILE` says one.
pub const DIR_FILE: &str = "lab.toml";

/// Verbs that are not about a lab: hints naming them get no `--lab`.
const VERBS_WITHOUT_LAB: [&str; 3] = ["image", "completions", "man"];

/// What chose the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChosenBy {
    Flag,
    Env,
    DirFile,
    Current,
    Default,
}

/// The lab a command is about: the `--lab` argument that gives it, and what chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabChoice {
    pub arg: String,
    pub by: ChosenBy,
    /// The lab file as `up` saved it in the lab's state, read when the recorded current
    /// lab's own file is gone.
    pub fallback: Option<PathBuf>,
}

impl LabChoice {
    /// The first source that says a lab, in order: `flag`, `env`, `dir_file` (whether
    /// `lab.toml` is in the current directory), the recorded `current` lab, the default.
    /// Empty values say nothing.
    pub fn choose(
        flag: Option<&str>,
        env: Option<&str>,
        dir_file: bool,
        current: Option<(Current, PathBuf)>,
    ) -> LabChoice {
        let given = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(str::to_string);
        let pick = |arg: String, by| LabChoice {
            arg,
            by,
            fallback: None,
        };
        if let Some(arg) = given(flag) {
            pick(arg, ChosenBy::Flag)
        } else if let Some(arg) = given(env) {
            pick(arg, ChosenBy::Env)
        } else if dir_file {
            pick(DIR_FILE.to_string(), ChosenBy::DirFile)
        } else if let Some((current, copy)) = current {
            LabChoice {
                arg: current.arg,
                by: ChosenBy::Current,
                fallback: Some(copy),
            }
        } else {
            pick(DEFAULT_LAB.to_string(), ChosenBy::Default)
        }
    }

    /// The lab of this process: `--lab` as given (`None` when absent), then `$LAB_FILE`,
    /// `./lab.toml`, the state root's current lab, the default.
    pub fn find(flag: Option<&str>) -> LabChoice {
        let env = std::env::var(LAB_ENV).ok();
        let current = state::root().ok().and_then(|root| {
            let c = state::current(&root)?;
            let copy = state::LabState::new(&root, &c.name)
                .dir()
                .join(crate::names::state::LAB_FILE);
            Some((c, copy))
        });
        LabChoice::choose(flag, env.as_deref(), Path::new(DIR_FILE).is_file(), current)
    }

    /// The lab file. The recorded current lab whose file is gone is read from its state.
    pub fn source(&self) -> Result<Source, LoadError> {
        match (Source::resolve(&self.arg), &self.fallback) {
            (Err(LoadError::Read { .. }), Some(copy)) => {
                Source::resolve(copy.to_str().unwrap_or_default())
            }
            (r, _) => r,
        }
    }

    /// The name of the lab's first node, for hints; `NODE` when the lab does not load.
    pub fn first_node(&self) -> String {
        self.source()
            .ok()
            .and_then(|s| s.load(&crate::image::Catalogue::builtin()).ok())
            .and_then(|(l, _)| l.nodes.first().map(|n| n.name.clone()))
            .unwrap_or_else(|| "NODE".into())
    }

    /// What a `lab` command needs to pick this lab: nothing when a bare command picks it
    /// (the default, the current lab), else ` --lab ARG`.
    pub fn flag(&self) -> String {
        match self.by {
            ChosenBy::Default | ChosenBy::Current => String::new(),
            _ => format!(" --lab {}", crate::provision::quote(&self.arg)),
        }
    }

    /// What `lab up` records so that later bare commands pick this lab from any directory:
    /// a shipped lab's name as is, a file by its absolute path.
    pub fn record(&self, name: &str) -> Current {
        let shipped = crate::model::load::BUILTIN_LABS
            .iter()
            .any(|(n, _)| *n == self.arg)
            && !Path::new(&self.arg).exists();
        let arg = if shipped {
            self.arg.clone()
        } else {
            std::path::absolute(&self.arg)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| self.arg.clone())
        };
        Current {
            name: name.to_string(),
            arg,
        }
    }
}

/// Adds `flag` (see [`LabChoice::flag`]) and `--instance NAME` to every `` `lab VERB ...` ``
/// command quoted in `text` that is about a lab and does not name one (or its instance), so
/// each hint works as printed. A lock holder's description (`` `lab up` (pid N) ``) is left
/// as it is.
pub fn name_the_lab(text: &str, flag: &str, instance: Option<&str>) -> String {
    if flag.is_empty() && instance.is_none() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + flag.len());
    let mut rest = text;
    while let Some(start) = rest.find("`lab ") {
        let after = &rest[start + 1..];
        let Some(len) = after.find('`') else { break };
        let command = &after[..len];
        let tail = &after[len + 1..];
        let verb = command.split_whitespace().nth(1).unwrap_or_default();
        let has = |long: &str, short: &str| {
            command
                .split_whitespace()
                .any(|w| w == long || w == short || w.starts_with(&format!("{long}=")))
        };
        out.push_str(&rest[..start + 1]);
        out.push_str(command);
        if !VERBS_WITHOUT_LAB.contains(&verb) && !tail.starts_with(" (pid") {
            if !has("--lab", "-l") {
                out.push_str(flag);
            }
            if let Some(name) = instance.filter(|_| !has("--instance", "-i")) {
                out.push_str(&format!(" --instance {name}"));
            }
        }
        out.push('`');
        rest = tail;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current() -> Option<(Current, PathBuf)> {
        Some((
            Current {
                name: "ocata-deb".into(),
                arg: "openstack-debian12".into(),
            },
            PathBuf::from("/state/ocata-deb/lab.toml"),
        ))
    }

    #[test]
    fn the_first_source_that_says_a_lab_wins() {
        let by = |flag, env, dir, cur| LabChoice::choose(flag, env, dir, cur);
        let c = by(Some("a.toml"), Some("b.toml"), true, current());
        assert_eq!((c.arg.as_str(), c.by), ("a.toml", ChosenBy::Flag));
        let c = by(None, Some("b.toml"), true, current());
        assert_eq!((c.arg.as_str(), c.by), ("b.toml", ChosenBy::Env));
        let c = by(None, Some(""), true, current());
        assert_eq!((c.arg.as_str(), c.by), ("lab.toml", ChosenBy::DirFile));
        let c = by(None, None, false, current());
        assert_eq!(
            (c.arg.as_str(), c.by),
            ("openstack-debian12", ChosenBy::Current)
        );
        assert_eq!(
            c.fallback.as_deref(),
            Some(Path::new("/state/ocata-deb/lab.toml"))
        );
        let c = by(None, None, false, None);
        assert_eq!(
            (c.arg.as_str(), c.by),
            ("openstack-ocata", ChosenBy::Default)
        );
    }

    #[test]
    fn hints_name_the_lab_only_when_a_bare_command_would_pick_another() {
        let flag = |arg: &str, by| {
            LabChoice {
                arg: arg.into(),
                by,
                fallback: None,
            }
            .flag()
        };
        assert_eq!(flag("openstack-ocata", ChosenBy::Default), "");
        assert_eq!(flag("openstack-debian12", ChosenBy::Current), "");
        assert_eq!(
            flag("openstack-debian12", ChosenBy::Flag),
            " --lab openstack-debian12"
        );
        assert_eq!(
            flag("my labs/x.toml", ChosenBy::Env),
            " --lab 'my labs/x.toml'"
        );
    }

    #[test]
    fn every_lab_command_in_a_message_gets_the_flag_once() {
        let flag = " --lab openstack-debian12";
        assert_eq!(
            name_the_lab(
                "lab ocata-deb has no state in /s: run `lab up` first",
                flag,
                None
            ),
            "lab ocata-deb has no state in /s: run `lab up --lab openstack-debian12` first"
        );
        assert_eq!(
            name_the_lab("`lab down` and `lab up` rebuild it", flag, None),
            "`lab down --lab openstack-debian12` and `lab up --lab openstack-debian12` rebuild it"
        );
        for unchanged in [
            "run `lab image pull centos7` to download it again",
            "run `lab up --lab x.toml` first",
            "lab ocata is busy: `lab up` (pid 7) holds /s/ocata.lock; wait for it to finish",
            "no command here",
            "an unclosed `lab up",
        ] {
            assert_eq!(name_the_lab(unchanged, flag, None), unchanged);
        }
        assert_eq!(
            name_the_lab("run `lab up` first", "", None),
            "run `lab up` first"
        );
    }

    #[test]
    fn hints_name_the_instance_unless_they_already_do() {
        let s1 = Some("s1");
        assert_eq!(
            name_the_lab("run `lab up` first", "", s1),
            "run `lab up --instance s1` first"
        );
        assert_eq!(
            name_the_lab("`lab up --instance s9` makes it", " --lab x.toml", s1),
            "`lab up --instance s9 --lab x.toml` makes it"
        );
        assert_eq!(
            name_the_lab("`lab down -i NAME` frees one; `lab image list`", "", s1),
            "`lab down -i NAME` frees one; `lab image list`"
        );
    }

    #[test]
    fn up_records_shipped_labs_by_name_and_files_by_absolute_path() {
        let choice = |arg: &str| LabChoice {
            arg: arg.into(),
            by: ChosenBy::Flag,
            fallback: None,
        };
        assert_eq!(
            choice("openstack-debian12").record("ocata-deb").arg,
            "openstack-debian12"
        );
        let file = choice("labs/x.toml").record("x").arg;
        assert!(
            Path::new(&file).is_absolute() && file.ends_with("labs/x.toml"),
            "{file}"
        );
    }
}

//! A guest profile is a folder: the test profile `tests/profiles/minimal/` is loaded from disk
//! by the same loader as the built-in ones and gives a lab's nodes their steps, filled with
//! its own packages, paths and services; a broken profile.toml is refused with the error
//! that names its fault.

use std::fs;
use std::path::{Path, PathBuf};

use lab::image::Catalogue;
use lab::model::{Role, Source};
use lab::provision::profile::{self, ProfileDef, ProfileError};

fn folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/profiles/minimal")
}

fn load_text(text: &str) -> Result<ProfileDef, ProfileError> {
    let defaults = fs::read_to_string(folder().join("chrony-defaults.conf")).unwrap();
    profile::load("minimal/profile.toml", text, &defaults)
}

fn minimal() -> ProfileDef {
    load_text(&fs::read_to_string(folder().join("profile.toml")).unwrap()).unwrap()
}

#[test]
fn a_profile_folder_gives_each_node_its_steps_filled_from_its_data() {
    let def = minimal();
    assert_eq!(def.steps, ["chrony", "client", "memcached"]);
    let (lab, _) = Source::resolve("openstack-debian12")
        .unwrap()
        .load(&Catalogue::builtin())
        .unwrap();
    let controller = lab.controller();
    let steps = profile::steps_of(&def, &lab, controller);
    let ids: Vec<_> = steps
        .iter()
        .filter(|s| s.applies_to(Role::Controller))
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, ["chrony", "client", "memcached"]);

    let chrony = &steps[0];
    assert!(
        chrony.check.contains("rpm -q --whatprovides chrony"),
        "{}",
        chrony.check
    );
    assert!(
        chrony.apply.contains("/etc/chrony-minimal.conf"),
        "{}",
        chrony.apply
    );
    assert!(
        chrony.apply.contains("systemctl restart chronyd"),
        "{}",
        chrony.apply
    );
    assert!(
        chrony.files[0]
            .content
            .contains("driftfile /var/lib/chrony/minimal.drift")
    );
    assert!(
        steps[1]
            .apply
            .contains("yum install -y python3-openstackclient")
    );
    let line = format!("LISTEN={}", controller.name);
    assert!(steps[2].check.contains(&line), "{}", steps[2].check);
    assert!(steps[2].apply.contains("/etc/sysconfig/memcached-minimal"));
}

#[test]
fn a_broken_profile_is_refused_with_its_fault_named() {
    let text = fs::read_to_string(folder().join("profile.toml")).unwrap();
    let path = "minimal/profile.toml".to_string();

    let unknown = text.replace("\"client\"", "\"keystone\"");
    match load_text(&unknown) {
        Err(ProfileError::UnknownStep { step, known, .. }) => {
            assert_eq!(step, "keystone");
            assert!(known.contains("memcached"), "{known}");
        }
        other => panic!("{other:?}"),
    }

    let twice = text.replace("\"client\"", "\"chrony\"");
    assert_eq!(
        load_text(&twice),
        Err(ProfileError::Repeated {
            path: path.clone(),
            step: "chrony".into()
        })
    );

    let none = text.replace(
        "steps = [\"chrony\", \"client\", \"memcached\"]",
        "steps = []",
    );
    assert_eq!(load_text(&none), Err(ProfileError::NoSteps { path }));

    let extra = text.replace("[guest.sql]", "[guest.sql]\nport = 3306");
    match load_text(&extra) {
        Err(ProfileError::Parse { message, .. }) => {
            assert!(message.contains("unknown field `port`"), "{message}")
        }
        other => panic!("{other:?}"),
    }

    let missing = text.replace("package_manager = \"yum\"\n", "");
    match load_text(&missing) {
        Err(ProfileError::Parse { message, .. }) => {
            assert!(message.contains("package_manager"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

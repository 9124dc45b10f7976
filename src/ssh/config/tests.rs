//! The ssh config subset and the URI forms.

use super::*;

fn dest(user: Option<&str>, host: &str, port: Option<u16>) -> Destination {
    Destination {
        user: user.map(str::to_string),
        host: host.to_string(),
        port,
    }
}

fn spec(uri: &str, config: &str) -> HostSpec {
    let dest = remote_host(uri).unwrap().unwrap();
    resolve(&dest, config, Path::new("/home/me"), "me").unwrap()
}

#[test]
fn ssh_uris_give_their_destination_and_others_none() {
    let cases = [
        (
            "qemu+ssh://root@kvm1/system",
            dest(Some("root"), "kvm1", None),
        ),
        (
            "qemu+ssh://u@kvm1.example:2222/system?keyfile=/k",
            dest(Some("u"), "kvm1.example", Some(2222)),
        ),
        ("qemu+ssh://kvm1/system", dest(None, "kvm1", None)),
        (
            "qemu+libssh2://[fe80::1]:22/system",
            dest(None, "fe80::1", Some(22)),
        ),
    ];
    for (uri, want) in cases {
        assert_eq!(remote_host(uri).unwrap(), Some(want), "{uri}");
    }
    for local in [
        "qemu:///system",
        "qemu+tcp://kvm1/system",
        "test:///default",
        "x",
    ] {
        assert_eq!(remote_host(local).unwrap(), None, "{local}");
    }
    for bad in [
        "qemu+ssh:///system",
        "qemu+ssh://u@h:22x/system",
        "qemu+ssh://@h/s",
    ] {
        let e = remote_host(bad).unwrap_err().to_string();
        assert!(e.starts_with(&format!("libvirt uri {bad}: ")), "{e}");
        assert!(
            e.ends_with("use qemu+ssh://[user@]host[:port]/system"),
            "{e}"
        );
    }
}

#[test]
fn destinations_print_as_ssh_j_takes_them() {
    assert_eq!(dest(Some("u"), "h", Some(2222)).to_string(), "u@h:2222");
    assert_eq!(dest(None, "h", None).to_string(), "h");
    assert_eq!(dest(None, "::1", Some(22)).to_string(), "[::1]:22");
}

#[test]
fn without_config_openssh_defaults_apply() {
    let s = spec("qemu+ssh://kvm1/system", "");
    let want = HostSpec {
        host: "kvm1".into(),
        hostname: "kvm1".into(),
        port: 22,
        user: "me".into(),
        identity_files: ["id_ed25519", "id_ecdsa", "id_rsa"]
            .map(|k| PathBuf::from(format!("/home/me/.ssh/{k}")))
            .to_vec(),
        proxy_jump: vec![],
    };
    assert_eq!(s, want);
}

const CONFIG: &str = "\
# a comment
Host !kvm9 kvm? other
  HostName %h.lab.example
  Port=2200
  User admin
  IdentityFile ~/.ssh/lab_key
  IdentityFile \"%d/keys/%r at %h\"
  ProxyJump gate@bastion:2022,inner

Host *
  User nobody
  Port 22
  HostName ignored
  IdentityFile ~/.ssh/id_extra
  ProxyJump none
";

#[test]
fn the_first_matching_value_wins_and_identity_files_add_up() {
    let s = spec("qemu+ssh://KVM1/system", CONFIG);
    assert_eq!(
        (s.hostname.as_str(), s.port, s.user.as_str()),
        ("KVM1.lab.example", 2200, "admin")
    );
    let files: Vec<_> = s
        .identity_files
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(
        files,
        [
            "/home/me/.ssh/lab_key",
            "/home/me/keys/admin at KVM1.lab.example",
            "/home/me/.ssh/id_extra"
        ]
    );
    assert_eq!(
        s.proxy_jump,
        [
            dest(Some("gate"), "bastion", Some(2022)),
            dest(None, "inner", None)
        ]
    );
}

#[test]
fn the_uri_user_and_port_win_over_the_config() {
    let s = spec("qemu+ssh://root@kvm1:2/system", CONFIG);
    assert_eq!((s.user.as_str(), s.port), ("root", 2));
}

#[test]
fn negated_and_unmatched_patterns_fall_through_to_later_blocks() {
    for host in ["kvm9", "kvm10", "elsewhere"] {
        let s = spec(&format!("qemu+ssh://{host}/system"), CONFIG);
        assert_eq!(
            (s.hostname.as_str(), s.port, s.user.as_str()),
            ("ignored", 22, "nobody"),
            "{host}"
        );
        assert!(s.proxy_jump.is_empty(), "ProxyJump none: {host}");
    }
}

#[test]
fn match_blocks_other_than_all_are_skipped() {
    let config = "Match host kvm1\n  User skipped\nMatch all\n  Port 7\n";
    let s = spec("qemu+ssh://kvm1/system", config);
    assert_eq!((s.user.as_str(), s.port), ("me", 7));
}

#[test]
fn a_bad_port_or_hop_names_the_line() {
    let dest = dest(None, "kvm1", None);
    let home = Path::new("/home/me");
    let e = resolve(&dest, "Host *\n  Port ssh\n", home, "me").unwrap_err();
    assert_eq!(
        e.to_string(),
        "ssh config line 2: port \"ssh\" is not a number: fix it or check with `ssh -G HOST`"
    );
    let e = resolve(&dest, "ProxyJump a,:1\n", home, "me").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("ssh config line 1: ProxyJump hop \":1\": no host"),
        "{e}"
    );
}

#[test]
fn globs_match_as_openssh_does() {
    let m = |p: &str, h: &str| host_matches(&[p.to_string()], h);
    assert!(m("*", "anything") && m("k?m*", "kvm1.x") && m("*.example", "a.example"));
    assert!(!m("k?m", "kvm1") && !m("*.example", "example") && !m("!kvm1", "kvm2"));
}

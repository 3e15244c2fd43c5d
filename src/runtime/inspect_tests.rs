//! Inspection of archives built by the tests (see `archive_tests.rs`): no engine.

use super::*;
use crate::runtime::archive::tests::{E, caps_v2, docker_save, layer};

const PASSWD: &[u8] = b"root:x:0:0::/root:/bin/sh\npostgres:x:999:999::/var/lib/postgresql:/bin/sh\napp:x:1000:1000::/:/bin/sh\n";

fn inspect(config: &str, layers: &[Vec<u8>]) -> Inspection {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut f, &docker_save(config, layers)).unwrap();
    let image = archive::read(f.path()).unwrap();
    analyse(&image, "acme/db:1")
}

fn base_layer() -> Vec<u8> {
    layer(&[
        E::Dir("etc/", 0o755, 0),
        E::File("etc/passwd", 0o644, 0, PASSWD),
        E::File("etc/group", 0o644, 0, b"root:x:0:\npostgres:x:999:\n"),
        E::File("usr/bin/su", 0o4755, 0, b"\x7fELF"),
        E::File("usr/bin/passwd", 0o4755, 0, b"\x7fELF"),
        E::File("usr/local/bin/gosu", 0o755, 0, b"\x7fELF"),
    ])
}

#[test]
fn a_gosu_entrypoint_through_a_symlink_is_root_then_drop_with_its_uid() {
    let script = b"#!/bin/sh\nset -e\nif [ \"$(id -u)\" = 0 ]; then\n  chown -R postgres /var/lib/db\n  exec gosu postgres \"$0\" \"$@\"\nfi\nexec \"$@\"\n";
    let app = layer(&[
        E::File("usr/local/bin/docker-entrypoint.sh", 0o755, 0, script),
        E::Link("docker-entrypoint.sh", "usr/local/bin/docker-entrypoint.sh"),
        E::Dir("var/lib/db/", 0o700, 999),
    ]);
    let config = r#"{"config":{"Entrypoint":["docker-entrypoint.sh"],"Cmd":["postgres"],
        "Env":["PATH=/usr/local/bin:/usr/bin:/bin"],"Volumes":{"/var/lib/db":{},"/run/x":{}},
        "ExposedPorts":{"5432/tcp":{},"80/tcp":{}}}}"#;
    let i = inspect(config, &[base_layer(), app]);
    assert_eq!(i.scripts, ["/usr/local/bin/docker-entrypoint.sh"]);
    assert_eq!(i.setuid, ["/usr/bin/passwd", "/usr/bin/su"]);
    let p = &i.profile;
    assert_eq!(p.class, Class::RootThenDrop);
    assert_eq!(
        p.caps_as_root,
        ["CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID"]
    );
    assert_eq!(p.user.as_deref(), Some("999:999"));
    assert_eq!(p.confidence, Confidence::Inspected);
    assert!(
        p.nnp,
        "setuid files the start path never runs do not matter"
    );
    assert_eq!(p.digest.as_deref(), Some(i.digest.as_str()));
    assert_eq!(
        (p.repos.clone(), p.tags.clone()),
        (vec!["acme/db".to_string()], vec!["1".to_string()])
    );
    assert_eq!(p.checked_tags, ["1"]);
    assert_eq!(p.low_ports, [80]);
    assert_eq!(
        i.volumes,
        [
            Volume {
                path: "/run/x".into(),
                owner: None,
                mode: None
            },
            Volume {
                path: "/var/lib/db".into(),
                owner: Some("999:999".into()),
                mode: Some("0700".into())
            },
        ]
    );
    let notes = p.notes.clone().unwrap();
    assert!(
        notes.contains("VOLUME /var/lib/db is 999:999 0700"),
        "{notes}"
    );
    let lines: Vec<String> = i
        .evidence
        .iter()
        .map(|e| format!("{}:{}", e.file, e.line))
        .collect();
    assert!(
        lines.contains(&"/usr/local/bin/docker-entrypoint.sh:5".to_string()),
        "{lines:?}"
    );
}

#[test]
fn a_non_root_image_running_a_file_cap_binary_keeps_that_cap_in_the_bounding_set() {
    let app = layer(&[
        E::Caps("usr/local/bin/srv", 0o755, &caps_v2(1 << 10)),
        E::Caps("usr/local/bin/unused", 0o755, &caps_v2(1 << 13)),
    ]);
    // Run through a wrapper that takes the binary as an argument.
    let config = r#"{"config":{"User":"app","Cmd":["wrap","/usr/local/bin/srv","--port","80"]}}"#;
    let i = inspect(config, &[base_layer(), app]);
    let p = &i.profile;
    assert_eq!(p.class, Class::NonRoot);
    assert_eq!(p.caps_as_nonroot, ["NET_BIND_SERVICE"]);
    assert!(
        p.nnp,
        "with no-new-privileges the exec works (gaining nothing)"
    );
    assert_eq!(p.user.as_deref(), Some("1000:1000"));
    assert_eq!(i.file_caps.len(), 2);
}

#[test]
fn a_non_root_user_calling_a_setuid_helper_is_not_nnp_safe() {
    let script = b"#!/bin/bash\nsu -c 'x' root\nexec \"$@\"\n";
    let app = layer(&[E::File("entry.sh", 0o755, 0, script)]);
    let config = r#"{"config":{"User":"1000","Entrypoint":["/entry.sh"]}}"#;
    let i = inspect(config, &[base_layer(), app]);
    assert!(!i.profile.nnp);
    assert!(
        i.evidence
            .iter()
            .any(|e| e.text.contains("4755 0:0 /usr/bin/su"))
    );
}

#[test]
fn an_unknown_binary_as_root_cannot_be_told() {
    let config = r#"{"config":{"Cmd":["/usr/local/bin/server"]}}"#;
    let i = inspect(config, &[base_layer()]);
    assert_eq!(i.profile.confidence, Confidence::Unverified);
    assert!(i.proposal.cannot_tell.is_some());
    assert!(!i.profile.confidence.is_trusted());
}

#[test]
fn the_cache_file_is_named_by_digest_only() {
    assert!(cache_file("sha256:../../etc").is_none());
    assert!(cache_file("md5:abc").is_none());
    let f = cache_file("sha256:abcdef").unwrap();
    assert!(f.ends_with("compose-harden/inspect/abcdef.json"));
}

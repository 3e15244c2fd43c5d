//! The decision policy, one behaviour class or tricky image at a time: which edits a
//! service gets, how sure they are, and why.

use std::path::Path;

use compose_harden::document::Document;
use compose_harden::edit::Applicability;
use compose_harden::fixer::{self, Options};
use compose_harden::rules::Diagnostic;
use compose_harden::yaml::Limits;

fn findings(compose: &str, opts: &Options, dir: Option<&Path>) -> Vec<Diagnostic> {
    let doc = Document::parse(compose.to_string(), Limits::default()).unwrap();
    fixer::check(&doc, opts, dir)
}

/// `(rule, applicability or "none", fix title)` for one service.
fn plan(compose: &str, service: &str) -> Vec<(String, String, String)> {
    plan_with(compose, service, &Options::default(), None)
}

fn plan_with(
    compose: &str,
    service: &str,
    opts: &Options,
    dir: Option<&Path>,
) -> Vec<(String, String, String)> {
    findings(compose, opts, dir)
        .into_iter()
        .filter(|d| d.service == service)
        .map(|d| {
            (
                d.rule.to_string(),
                d.fix
                    .as_ref()
                    .map_or("none".to_string(), |f| f.applicability.as_str().to_string()),
                d.fix_title.as_deref().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn one(image: &str) -> String {
    format!("services:\n  s:\n    image: {image}\n")
}

fn caps_of(p: &[(String, String, String)]) -> (String, String) {
    let f = p.iter().find(|x| x.0 == "CH003").expect("CH003 finding");
    (f.1.clone(), f.2.clone())
}

fn bound(image: &str) -> String {
    format!("services:\n  s:\n    image: {image}\n    volumes:\n      - ./data:/data\n")
}

#[test]
fn root_then_drop_runs_as_its_own_user_with_named_volumes_only() {
    let c = "services:\n  s:\n    image: postgres:16\n    volumes:\n      - pg:/var/lib/postgresql/data\nvolumes:\n  pg:\n";
    let p = plan(c, "s");
    assert!(
        p.contains(&(
            "CH001".into(),
            "verified".into(),
            "add user: \"999:999\"".into()
        )),
        "{p:?}"
    );
    assert_eq!(
        caps_of(&p),
        ("verified".into(), "add cap_drop: [ALL]".into())
    );
    // A host bind mount must be owned by 999 first: keep root and say why.
    let d = findings(&bound("postgres:16"), &Options::default(), None);
    let caps = d.iter().find(|x| x.rule == "CH003").unwrap();
    assert!(
        caps.reason.contains("must be owned by 999:999"),
        "{}",
        caps.reason
    );
    assert!(d.iter().all(|x| x.rule != "CH001"));
    // A file that adds capabilities keeps root (they would be dead as non-root).
    let adds = "services:\n  s:\n    image: postgres:16\n    cap_add: [SYS_NICE]\n";
    assert!(plan(adds, "s").iter().all(|x| x.0 != "CH001"));
}

#[test]
fn root_then_drop_keeps_root_with_exactly_the_entrypoint_caps() {
    let p = plan(&bound("postgres:16"), "s");
    assert_eq!(
        caps_of(&p),
        (
            "verified".into(),
            "add cap_drop: [ALL], cap_add: [CHOWN, DAC_OVERRIDE, SETGID, SETUID]".into()
        )
    );
    assert!(
        p.iter().all(|x| x.0 != "CH001"),
        "the entrypoint steps down itself: {p:?}"
    );
    // Alpine variants use the same entrypoint (uid 70 instead of 999).
    assert_eq!(
        caps_of(&plan(&bound("postgres:16-alpine"), "s")).0,
        "verified"
    );
}

#[test]
fn redis_7_and_8_have_their_own_rows_and_keep_setuid_setgid() {
    for tag in ["7", "7.2-alpine", "8", "latest", "8.0-alpine"] {
        let (appl, title) = caps_of(&plan(&bound(&format!("redis:{tag}")), "s"));
        assert_eq!(appl, "verified", "redis:{tag}");
        // redis 8 silently stays root without SETUID/SETGID: never drop them.
        assert!(
            title.contains("SETGID") && title.contains("SETUID"),
            "redis:{tag}: {title}"
        );
    }
}

#[test]
fn non_root_images_get_cap_drop_all_and_nothing_back() {
    let p = plan(&one("grafana/grafana:11.2.0"), "s");
    assert_eq!(
        caps_of(&p),
        ("verified".into(), "add cap_drop: [ALL]".into())
    );
    assert!(p.iter().all(|x| x.0 != "CH001"));
}

#[test]
fn caddy_needs_net_bind_service_for_its_file_capability() {
    assert_eq!(
        caps_of(&plan(&one("caddy:2"), "s")).1,
        "add cap_drop: [ALL], cap_add: [NET_BIND_SERVICE]"
    );
}

#[test]
fn nginx_drops_its_workers_and_needs_net_bind_service_only_on_the_host_network() {
    assert_eq!(
        caps_of(&plan(&one("nginx:1.27"), "s")).1,
        "add cap_drop: [ALL], cap_add: [CHOWN, SETGID, SETUID]"
    );
    let host = "services:\n  s:\n    image: nginx:1.27\n    network_mode: host\n";
    assert_eq!(
        caps_of(&plan(host, "s")).1,
        "add cap_drop: [ALL], cap_add: [CHOWN, NET_BIND_SERVICE, SETGID, SETUID]"
    );
}

#[test]
fn an_explicit_non_root_user_on_an_unknown_image_is_not_evidence_for_cap_drop_all() {
    // sudo, setuid helpers and file capabilities need capabilities as non-root.
    let p = plan(
        "services:\n  s:\n    image: ghcr.io/acme/x:1\n    user: \"1000:1000\"\n",
        "s",
    );
    assert_eq!(
        caps_of(&p),
        ("unverified".into(), "add cap_drop: [ALL]".into())
    );
    // A known image run as non-root: its profile is the evidence.
    let p = plan(
        "services:\n  s:\n    image: grafana/grafana:11.2.0\n    user: \"1000:1000\"\n",
        "s",
    );
    assert_eq!(caps_of(&p).0, "verified");
}

#[test]
fn unknown_images_get_nothing_verified() {
    let p = plan(&one("ghcr.io/acme/x:1"), "s");
    let by_rule = |r: &str| p.iter().find(|x| x.0 == r).map(|x| x.1.clone()).unwrap();
    // Images that use sudo, setuid helpers or file capabilities as non-root break.
    assert_eq!(by_rule("CH002"), "unverified");
    assert_eq!(by_rule("CH003"), "unverified");
    assert_eq!(by_rule("CH001"), "unverified");
    assert!(p.iter().any(|x| x.2 == "add user: \"10001:10001\""));
}

#[test]
fn do_not_harden_images_and_docker_socket_are_reported_not_fixed() {
    assert_eq!(
        caps_of(&plan(&one("lscr.io/linuxserver/sonarr:latest"), "s")).0,
        "none"
    );
    assert_eq!(
        caps_of(&plan(&one("pihole/pihole:2024.07.0"), "s")).0,
        "none"
    );
    let sock = "services:\n  s:\n    image: traefik:v3\n    volumes:\n      - /var/run/docker.sock:/var/run/docker.sock\n";
    let p = plan(sock, "s");
    assert_eq!(caps_of(&p).0, "none");
    assert!(p.iter().any(|x| x.0 == "CH006"));
    assert!(
        p.iter().all(|x| x.0 != "CH001"),
        "no user change next to the socket"
    );
}

#[test]
fn privileged_services_are_reported_and_left_alone() {
    let p = plan(
        "services:\n  s:\n    image: docker:dind\n    privileged: true\n",
        "s",
    );
    assert_eq!(
        p,
        vec![("CH005".to_string(), "none".to_string(), String::new())]
    );
}

#[test]
fn set_user_uses_the_images_own_user_and_no_caps() {
    let mut opts = Options::default();
    opts.settings.set_user = true;
    let p = plan_with(&one("postgres:16-alpine"), "s", &opts, None);
    assert!(
        p.contains(&(
            "CH001".into(),
            "verified".into(),
            "add user: \"70:70\"".into()
        )),
        "{p:?}"
    );
    assert_eq!(caps_of(&p).1, "add cap_drop: [ALL]");
}

#[test]
fn base_images_depend_on_the_command() {
    let plain = "services:\n  s:\n    image: alpine:3.20\n    command: sleep infinity\n";
    assert_eq!(
        caps_of(&plan(plain, "s")),
        ("verified".into(), "add cap_drop: [ALL]".into())
    );
    let chowns = "services:\n  s:\n    image: alpine:3.20\n    command: sh -c 'chown -R 1000 /data && su-exec app run'\n";
    assert_eq!(caps_of(&plan(chowns, "s")).0, "unverified");
    let pings = "services:\n  s:\n    image: busybox\n    command: ping -c 1 db\n";
    assert_eq!(
        caps_of(&plan(pings, "s")).1,
        "add cap_drop: [ALL], cap_add: [NET_RAW]"
    );
}

#[test]
fn build_services_read_the_dockerfile() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("app")).unwrap();
    std::fs::create_dir_all(d.join("db")).unwrap();
    std::fs::create_dir_all(d.join("custom")).unwrap();
    std::fs::write(
        d.join("app/Dockerfile"),
        "FROM node:22-alpine AS b\nRUN npm ci\nFROM node:22-alpine\nUSER node\n",
    )
    .unwrap();
    std::fs::write(
        d.join("db/Dockerfile"),
        "FROM postgres:16\nCOPY init.sql /docker-entrypoint-initdb.d/\n",
    )
    .unwrap();
    std::fs::write(
        d.join("custom/Dockerfile"),
        "FROM debian:12\nCOPY entrypoint.sh /\nENTRYPOINT [\"/entrypoint.sh\"]\n",
    )
    .unwrap();
    std::fs::write(
        d.join("custom/entrypoint.sh"),
        "#!/bin/sh\nchown -R app /data\nexec gosu app \"$@\"\n",
    )
    .unwrap();
    let compose = "services:\n  app:\n    build: ./app\n  db:\n    build:\n      context: ./db\n  custom:\n    build: ./custom\n  gone:\n    build: ./gone\n";
    let opts = Options::default();
    let caps = |s: &str| caps_of(&plan_with(compose, s, &opts, Some(d)));
    assert_eq!(
        caps("app"),
        ("verified".into(), "add cap_drop: [ALL]".into()),
        "final-stage USER node"
    );
    assert_eq!(
        caps("db").1,
        "add cap_drop: [ALL], cap_add: [CHOWN, DAC_OVERRIDE, SETGID, SETUID]",
        "inherits postgres"
    );
    assert_eq!(
        caps("custom").0,
        "unverified",
        "entrypoint script switches user"
    );
    assert_eq!(caps("gone").0, "unverified", "missing Dockerfile");
}

#[test]
fn userns_mode_host_is_removed_only_where_needless() {
    let c = "services:\n  a:\n    image: nginx:1.27\n    userns_mode: host\n  b:\n    image: nginx:1.27\n    userns_mode: host\n    network_mode: host\n  c:\n    image: nginx:1.27\n    userns_mode: host\n    volumes:\n      - ./html:/usr/share/nginx/html\n";
    let ch4 = |s: &str| plan(c, s).into_iter().find(|x| x.0 == "CH004").map(|x| x.1);
    assert_eq!(ch4("a"), Some("verified".into()));
    assert_eq!(ch4("b"), None, "host network needs it under userns-remap");
    assert_eq!(
        ch4("c"),
        Some("unverified".into()),
        "bind mounts change owner under remapping"
    );
}

#[test]
fn fixes_say_why_and_how_sure() {
    let d = findings(&bound("postgres:16"), &Options::default(), None);
    let caps = d.iter().find(|x| x.rule == "CH003").unwrap();
    assert!(caps.reason.contains("gosu"), "{}", caps.reason);
    assert!(
        caps.source
            .as_deref()
            .is_some_and(|s| s.contains("docker-library/postgres"))
    );
    assert_eq!(
        caps.fix.as_ref().unwrap().applicability,
        Applicability::Verified
    );
}

#[test]
fn extends_inherits_the_base_service() {
    let c = "services:\n  base:\n    image: nginx:1.27\n  child:\n    extends:\n      service: base\n  short:\n    extends: base\n";
    for s in ["child", "short"] {
        assert_eq!(
            caps_of(&plan(c, s)).1,
            "add cap_drop: [ALL], cap_add: [CHOWN, SETGID, SETUID]",
            "{s} runs nginx"
        );
    }
    // Fixing the base first lets the children inherit instead of copying.
    let fixed = fixer::fix(
        c.to_string(),
        &Options::default(),
        None,
        Applicability::Verified,
    )
    .unwrap();
    assert_eq!(fixed.text.matches("cap_drop").count(), 1, "{}", fixed.text);
}

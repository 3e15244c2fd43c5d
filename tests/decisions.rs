//! Issue 12: a fix is verified only on evidence about this service as the file runs it.
//! One test per class of wrong decision a reviewer found.

use std::path::Path;

use compose_harden::document::Document;
use compose_harden::edit::Applicability;
use compose_harden::fixer::{self, Options};
use compose_harden::knowledge::parse_profiles;
use compose_harden::rules::Diagnostic;
use compose_harden::yaml::Limits;

fn findings_with(compose: &str, opts: &Options, dir: Option<&Path>) -> Vec<Diagnostic> {
    let doc = Document::parse(compose.to_string(), Limits::default()).unwrap();
    fixer::check(&doc, opts, dir)
}

fn finding(compose: &str, rule: &str, opts: &Options) -> Option<Diagnostic> {
    findings_with(compose, opts, None)
        .into_iter()
        .find(|d| d.rule == rule)
}

fn ch(compose: &str, rule: &str) -> Diagnostic {
    finding(compose, rule, &Options::default()).unwrap_or_else(|| panic!("no {rule}"))
}

fn applicability(d: &Diagnostic) -> &'static str {
    d.fix.as_ref().map_or("none", |f| f.applicability.as_str())
}

fn title(d: &Diagnostic) -> String {
    d.fix_title.as_deref().unwrap_or_default().to_string()
}

fn with_profile(extra: &str) -> Options {
    let mut o = Options::default();
    o.settings.extra_profiles = parse_profiles(extra).unwrap();
    o
}

#[test]
fn a_dockerfile_that_installs_a_file_capability_is_no_evidence_for_cap_drop_all() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (name, body) in [
        (
            "caps",
            "FROM debian:12\nRUN setcap cap_net_raw+eip /usr/bin/ping\nUSER app\n",
        ),
        ("plain", "FROM debian:12\nRUN apt-get update\nUSER app\n"),
    ] {
        std::fs::create_dir_all(d.join(name)).unwrap();
        std::fs::write(d.join(name).join("Dockerfile"), body).unwrap();
    }
    let c = "services:\n  caps:\n    build: ./caps\n  plain:\n    build: ./plain\n";
    let all = findings_with(c, &Options::default(), Some(d));
    let get = |s: &str, r: &str| all.iter().find(|x| x.service == s && x.rule == r).unwrap();
    assert_eq!(applicability(get("caps", "CH003")), "unverified");
    assert!(get("caps", "CH003").reason.contains("setcap"));
    assert_eq!(applicability(get("caps", "CH002")), "unverified");
    assert_eq!(applicability(get("plain", "CH003")), "verified");
    assert_eq!(applicability(get("plain", "CH002")), "verified");
}

#[test]
fn user_root_in_the_file_beats_the_profile() {
    // A non-root image run as root writes files its own user owns.
    let g = ch(
        "services:\n  s:\n    image: grafana/grafana:11.2.0\n    user: root\n",
        "CH003",
    );
    assert!(title(&g).contains("DAC_OVERRIDE"), "{}", title(&g));
    assert!(g.reason.starts_with("user: root overrides"), "{}", g.reason);
    assert!(
        g.source.is_none(),
        "the image's non-root facts are not the source"
    );
    // A root-then-drop image started as root still chowns and steps down.
    let p = ch(
        "services:\n  s:\n    image: postgres:16\n    user: \"0\"\n",
        "CH003",
    );
    assert_eq!(
        title(&p),
        "add cap_drop: [ALL], cap_add: [CHOWN, DAC_OVERRIDE, SETGID, SETUID]"
    );
    assert!(
        finding(
            "services:\n  s:\n    image: postgres:16\n    user: root\n",
            "CH001",
            &Options::default()
        )
        .is_some()
    );
}

#[test]
fn an_overridden_entrypoint_replaces_the_images_steps() {
    let c = "services:\n  s:\n    image: postgres:16\n    entrypoint: [\"postgres\", \"-D\", \"/data\"]\n";
    let caps = ch(c, "CH003");
    for gone in ["CHOWN", "SETGID", "SETUID"] {
        assert!(!title(&caps).contains(gone), "{}", title(&caps));
    }
    assert!(!caps.reason.contains("gosu"), "{}", caps.reason);
    let root = ch(c, "CH001");
    assert_eq!(applicability(&root), "unverified");
    let nnp = ch(c, "CH002");
    assert!(!nnp.reason.contains("steps down"), "{}", nnp.reason);
}

#[test]
fn a_row_vouches_only_for_the_tags_it_was_checked_for() {
    let row = r#"
[[image]]
repos = ["acme/db"]
checked_tags = ["2.*"]
class = "root-no-drop"
image_user = "root"
caps_as_root = []
caps_as_nonroot = []
nnp = true
confidence = "verified"
why = "never changes user"
sources = ["acme/db 2.4 Dockerfile"]
"#;
    let o = with_profile(row);
    let at = |img: &str| {
        let c = format!("services:\n  s:\n    image: {img}\n");
        applicability(&finding(&c, "CH003", &o).unwrap())
    };
    assert_eq!(at("acme/db:2.4"), "verified");
    assert_eq!(at("acme/db:3.0"), "unverified");
    assert_eq!(at("acme/db:${TAG}"), "unverified", "an unresolved tag");
    let d = finding("services:\n  s:\n    image: acme/db:3.0\n", "CH002", &o).unwrap();
    assert!(d.reason.contains("2.*"), "{}", d.reason);
}

#[test]
fn root_services_reading_host_paths_get_dac_override_never_dac_read_search() {
    let acme =
        "services:\n  s:\n    image: traefik:v3.1\n    volumes:\n      - ./acme.json:/acme.json\n";
    let d = ch(acme, "CH003");
    assert!(title(&d).contains("DAC_OVERRIDE"), "{}", title(&d));
    assert!(d.reason.contains("./acme.json"), "{}", d.reason);
    let logs = "services:\n  s:\n    image: traefik:v3.1\n    volumes:\n      - /var/log:/var/log:ro\n      - /etc/localtime:/etc/localtime:ro\n";
    assert!(title(&ch(logs, "CH003")).contains("DAC_OVERRIDE"));
    let tz = "services:\n  s:\n    image: traefik:v3.1\n    volumes:\n      - /etc/localtime:/etc/localtime:ro\n";
    assert!(!title(&ch(tz, "CH003")).contains("DAC_OVERRIDE"));
    let row = r#"
[[image]]
repos = ["acme/reader"]
class = "root-no-drop"
image_user = "root"
caps_as_root = ["DAC_READ_SEARCH", "KILL"]
caps_as_nonroot = []
nnp = true
confidence = "verified"
why = "reads logs of other users and signals its children"
sources = ["acme/reader Dockerfile"]
"#;
    let d = finding(
        "services:\n  s:\n    image: acme/reader:1\n",
        "CH003",
        &with_profile(row),
    )
    .unwrap();
    assert_eq!(
        title(&d),
        "add cap_drop: [ALL], cap_add: [DAC_OVERRIDE, KILL]"
    );
}

#[test]
fn userns_mode_host_stays_on_a_root_service_that_adds_capabilities() {
    let c = "services:\n  s:\n    image: alpine:3.20\n    cap_add: [SYS_ADMIN]\n    userns_mode: host\n";
    assert!(finding(c, "CH004", &Options::default()).is_none());
    let mut remap = Options::default();
    remap.settings.userns_remap = true;
    assert!(finding(c, "CH004", &remap).is_none());
}

#[test]
fn no_user_is_proposed_where_it_would_make_capabilities_or_low_ports_dead() {
    let vpn = "services:\n  s:\n    image: ghcr.io/acme/vpn:1\n    cap_add: [NET_ADMIN]\n";
    let d = ch(vpn, "CH001");
    assert_eq!(applicability(&d), "none");
    assert!(d.reason.contains("NET_ADMIN"));
    let host = "services:\n  s:\n    image: ghcr.io/acme/dns:1\n    network_mode: host\n";
    assert_eq!(applicability(&ch(host, "CH001")), "none");
}

#[test]
fn fixing_twice_gives_the_text_of_fixing_once() {
    let c = "services:\n  app:\n    image: ghcr.io/acme/x:1\n    ports:\n      - \"80:80\"\n  db:\n    image: mongo:7\n";
    let o = Options::default();
    let once = fixer::fix(c.into(), &o, None, Applicability::Unverified).unwrap();
    let first = fixer::fix(c.into(), &o, None, Applicability::Verified).unwrap();
    let twice = fixer::fix(first.text, &o, None, Applicability::Unverified).unwrap();
    assert_eq!(twice.text, once.text);
}

#[test]
fn new_keys_and_values_follow_the_files_quoting() {
    let mut remap = Options::default();
    remap.settings.userns_remap = true;
    let c = "services:\n  s:\n    image: nginx:1.27\n    network_mode: host\n";
    let fixed = fixer::fix(c.into(), &remap, None, Applicability::Verified).unwrap();
    assert!(
        fixed.text.contains("    userns_mode: host\n"),
        "{}",
        fixed.text
    );
    let q = "services:\n  s:\n    \"image\": \"nginx:1.27\"\n";
    let fixed = fixer::fix(q.into(), &Options::default(), None, Applicability::Verified).unwrap();
    assert!(fixed.text.contains("\"cap_drop\":"), "{}", fixed.text);
}

#[test]
fn no_new_privileges_reasons_are_true_for_the_class() {
    let d = ch(
        "services:\n  s:\n    image: grafana/grafana:11.2.0\n",
        "CH002",
    );
    assert!(!d.reason.contains("steps down"), "{}", d.reason);
    let d = ch("services:\n  s:\n    image: traefik:v3.1\n", "CH002");
    assert!(!d.reason.contains("steps down"), "{}", d.reason);
}

#[test]
fn a_ping_in_the_healthcheck_needs_net_raw() {
    let c = "services:\n  s:\n    image: busybox:1.36\n    command: httpd -f\n    healthcheck:\n      test: [\"CMD\", \"ping\", \"-c1\", \"db\"]\n";
    assert!(title(&ch(c, "CH003")).contains("NET_RAW"));
}

#[test]
fn extends_file_is_followed_within_the_project_and_reported_outside_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join(".git")).unwrap();
    std::fs::create_dir_all(d.join("app")).unwrap();
    std::fs::write(
        d.join("common.yml"),
        "services:\n  priv:\n    image: docker:dind\n    privileged: true\n  sock:\n    image: traefik:v3.1\n    volumes:\n      - /var/run/docker.sock:/var/run/docker.sock\n  loop:\n    extends:\n      file: common.yml\n      service: loop\n",
    )
    .unwrap();
    let c = "services:\n  a:\n    extends:\n      file: ../common.yml\n      service: priv\n  b:\n    extends: {file: ../common.yml, service: sock}\n  dev:\n    image: nginx:1.27\n    extends: {file: /dev/zero, service: x}\n  outside:\n    image: nginx:1.27\n    extends: {file: /etc/hostname, service: x}\n  loop:\n    image: nginx:1.27\n    extends: {file: ../common.yml, service: loop}\n";
    let all = findings_with(c, &Options::default(), Some(&d.join("app")));
    let get = |s: &str, r: &str| all.iter().find(|x| x.service == s && x.rule == r);
    assert!(
        get("a", "CH005").is_some(),
        "the base's privileged: true is seen"
    );
    assert!(get("a", "CH003").is_none());
    assert!(
        get("b", "CH006").is_some(),
        "the base's docker.sock is seen"
    );
    for (s, why) in [
        ("dev", "not a regular file"),
        ("outside", "outside the project"),
        ("loop", "loops"),
    ] {
        let caps = get(s, "CH003").unwrap();
        assert_eq!(applicability(caps), "unverified", "{s}");
        assert!(caps.reason.contains(why), "{s}: {}", caps.reason);
    }
}

#[test]
fn every_finding_says_which_evidence_backs_it() {
    use compose_harden::rules::Evidence;
    let c = "services:\n  db:\n    image: postgres:16\n  app:\n    image: ghcr.io/acme/app:1\n";
    let all = findings_with(c, &Options::default(), None);
    let ev = |s: &str, r: &str| {
        all.iter()
            .find(|x| x.service == s && x.rule == r)
            .unwrap()
            .evidence
    };
    assert_eq!(ev("db", "CH002"), Evidence::Profile);
    assert_eq!(ev("db", "CH003"), Evidence::Profile);
    assert_eq!(ev("app", "CH002"), Evidence::Generic);
    assert_eq!(ev("app", "CH003"), Evidence::Generic);
}

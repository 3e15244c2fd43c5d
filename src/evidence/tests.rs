use super::*;
use crate::knowledge::{Class, Confidence};

const POSTGRES_LIKE: &str = "#!/bin/sh\nset -e\n# gosu in a comment does not count\n\
if [ \"$(id -u)\" = '0' ]; then\n  find \"$PGDATA\" \\! -user postgres -exec chown postgres '{}' +\n  \
chmod 700 \"$PGDATA\" || :\n  exec gosu postgres \"$BASH_SOURCE\" \"$@\"\nfi\nexec \"$@\"\n";

fn kinds(ev: &[Evidence]) -> Vec<(usize, &Finding)> {
    ev.iter().map(|e| (e.line, &e.finding)).collect()
}

#[test]
fn a_root_then_drop_entrypoint_gives_its_lines_and_caps() {
    let ev = read_script("docker-entrypoint.sh", POSTGRES_LIKE);
    assert_eq!(
        kinds(&ev),
        vec![
            (
                5,
                &Finding::Chown {
                    paths: vec!["$PGDATA".into()],
                    recursive: true
                }
            ),
            (
                6,
                &Finding::Chmod {
                    paths: vec!["$PGDATA".into()]
                }
            ),
            (
                7,
                &Finding::StepDown {
                    tool: "gosu".into(),
                    user: Some("postgres".into())
                }
            ),
        ]
    );
    assert_eq!(ev[2].text, "exec gosu postgres \"$BASH_SOURCE\" \"$@\"");
    let p = propose(&ev);
    assert_eq!(p.class, Class::RootThenDrop);
    assert_eq!(
        p.caps_as_root,
        ["CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID"]
    );
    assert_eq!(p.steps_down_to.as_deref(), Some("postgres"));
    assert!(p.nnp);
    assert_eq!(p.confidence, Confidence::Inferred);
    assert!(p.why.contains("gosu (docker-entrypoint.sh:7)"), "{}", p.why);
}

#[test]
fn every_step_down_tool_is_recognised_with_its_user() {
    let cases = [
        ("exec su-exec redis redis-server", "su-exec", Some("redis")),
        (
            "setpriv --reuid=app --regid=app --init-groups cmd",
            "setpriv",
            Some("app"),
        ),
        (
            "chroot --userspec=1000:1000 / cmd",
            "chroot --userspec",
            Some("1000:1000"),
        ),
        ("exec chpst -u app:app cmd", "chpst", Some("app:app")),
        ("s6-setuidgid abc cmd", "s6-setuidgid", Some("abc")),
        ("runuser -u app -- cmd", "runuser", Some("app")),
        ("su app -c cmd", "su", Some("app")),
        ("/usr/local/bin/gosu 999:999 x", "gosu", Some("999:999")),
    ];
    for (line, tool, user) in cases {
        let ev = read_script("e.sh", line);
        let step = ev.iter().find_map(|e| match &e.finding {
            Finding::StepDown { tool, user } => Some((tool.clone(), user.clone())),
            _ => None,
        });
        assert_eq!(
            step,
            Some((tool.to_string(), user.map(str::to_string))),
            "{line}"
        );
    }
    assert!(read_script("e.sh", "setpriv --bounding-set -all cmd").is_empty());
    assert!(read_script("e.sh", "echo 'gosu' is fine").is_empty());
}

#[test]
fn setuid_setcap_sudo_and_ping() {
    let (ev, _) = read_dockerfile(
        "Dockerfile",
        "FROM debian\nRUN apt-get install -y libcap2-bin \\\n && setcap 'cap_net_bind_service,cap_net_raw=+ep' /usr/local/bin/srv\n\
         RUN chmod u+s /usr/bin/helper && chmod 4755 /usr/bin/other && chmod 0755 /x \\\n && chmod 2775 /run/d && chmod g+s /run/e\nUSER 1000\n",
    );
    assert_eq!(
        kinds(&ev),
        vec![
            (
                2,
                &Finding::Setcap {
                    caps: vec!["NET_BIND_SERVICE".into(), "NET_RAW".into()],
                    paths: vec!["/usr/local/bin/srv".into()]
                }
            ),
            (
                4,
                &Finding::SetuidBit {
                    paths: vec!["/usr/bin/helper".into()]
                }
            ),
            (
                4,
                &Finding::SetuidBit {
                    paths: vec!["/usr/bin/other".into()]
                }
            ),
            (
                6,
                &Finding::User {
                    user: "1000".into()
                }
            ),
        ]
    );
    let p = propose(&ev);
    assert_eq!(p.class, Class::NonRoot);
    assert_eq!(p.caps_as_nonroot, ["NET_BIND_SERVICE", "NET_RAW"]);
    assert!(!p.nnp, "the setuid helpers");
    let (ev, _) = read_dockerfile(
        "Dockerfile",
        "FROM debian\nRUN setcap cap_net_bind_service=ep /srv\nUSER 1000\n",
    );
    let p = propose(&ev);
    assert_eq!(p.caps_as_nonroot, ["NET_BIND_SERVICE"]);
    assert!(
        p.nnp,
        "with no-new-privileges the exec works, gaining nothing"
    );
    let ev = read_script("e.sh", "sudo -E app\nping -c1 db || true\n");
    assert_eq!(ev[0].finding, Finding::Sudo);
    assert_eq!(ev[1].finding, Finding::Ping);
}

#[test]
fn the_final_stage_decides_and_start_lines_are_read() {
    let text = "FROM golang AS build\nUSER 1000\nRUN setcap cap_net_raw+ep /x\n\
                FROM debian AS final\nCOPY --chown=1 entrypoint.sh /\nCOPY ./run.sh app.conf /etc/\n\
                ENTRYPOINT [\"/entrypoint.sh\"]\nCMD [\"nginx\", \"-g\", \"daemon off;\"]\n";
    let (ev, scripts) = read_dockerfile("Dockerfile", text);
    assert_eq!(scripts, ["entrypoint.sh", "./run.sh"]);
    assert_eq!(
        ev[0].finding,
        Finding::Start {
            instruction: "ENTRYPOINT".into(),
            words: vec!["/entrypoint.sh".into()]
        }
    );
    assert_eq!(
        ev[1].finding,
        Finding::Daemon {
            name: "nginx".into()
        }
    );
    let p = propose(&ev);
    assert_eq!(p.class, Class::SelfDroppingDaemon);
    assert_eq!(p.caps_as_root, ["CHOWN", "SETGID", "SETUID"]);
    assert_eq!(p.image_user, "root");
}

#[test]
fn an_unknown_program_as_root_cannot_be_told() {
    let (ev, _) = read_dockerfile(
        "Dockerfile",
        "FROM debian\nCMD /usr/local/bin/server --port 80\n",
    );
    let p = propose(&ev);
    assert_eq!(p.confidence, Confidence::Unverified);
    let reason = p.cannot_tell.unwrap();
    assert!(
        reason.contains("/usr/local/bin/server --port 80"),
        "{reason}"
    );
    assert!(p.caps_as_root.is_empty());
}

#[test]
fn s6_overlay_is_reported_as_do_not_harden() {
    let (ev, _) = read_dockerfile(
        "Dockerfile",
        "FROM alpine\nADD https://x/s6-overlay-noarch.tar.xz /tmp\nENTRYPOINT [\"/init\"]\n",
    );
    let p = propose(&ev);
    assert_eq!(p.class, Class::DoNotHarden);
    assert_eq!(p.confidence, Confidence::Pattern);
}

#[test]
fn long_lines_are_cut() {
    let line = format!("gosu app {}", "x".repeat(400));
    let ev = read_script("e.sh", &line);
    assert_eq!(ev[0].text.chars().count(), MAX_TEXT + 1);
}

#[test]
fn what_sudo_runs_runs_as_root() {
    let mut ev = read_script(
        "run.sh",
        "#!/bin/sh\nsudo -n -u root /usr/local/sbin/prepare\nexec \"$@\"\n",
    );
    assert_eq!(
        programs("sudo -n /usr/local/sbin/prepare\n# /not/this\n"),
        ["sudo", "/usr/local/sbin/prepare"]
    );
    ev.extend(read_script(
        "prepare",
        "mkdir -p /run/x\nchown app /run/x\n",
    ));
    ev.insert(
        0,
        evidence(
            "Dockerfile",
            3,
            "USER app",
            Finding::User { user: "app".into() },
        ),
    );
    let p = propose(&ev);
    assert_eq!(p.class, Class::NonRoot);
    assert_eq!(p.caps_as_nonroot, ["CHOWN", "SETGID", "SETUID"]);
    assert!(!p.nnp);
    let ev = read_script("run.sh", "sudo chown app /x\n");
    assert!(
        ev.iter()
            .any(|e| matches!(e.finding, Finding::Chown { .. }))
    );
}

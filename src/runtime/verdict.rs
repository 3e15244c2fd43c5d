//! From two runs of a service (as written, hardened) to a verdict, with the failure line
//! and what the failure advisor (`compose-harden why`) says to add back; and the report
//! `verify --format json` prints (`docs/verify-report.schema.json`).

use serde::Serialize;

use super::model::HardeningView;
use super::state::{Phase, Run};

pub const SCHEMA: &str = "compose-harden/verify/1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    WorksHardened,
    BreaksHardened,
    BrokenAsWritten,
    Skipped,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::WorksHardened => "works-hardened",
            Verdict::BreaksHardened => "breaks-hardened",
            Verdict::BrokenAsWritten => "broken-as-written",
            Verdict::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceReport {
    pub service: String,
    pub verdict: Verdict,
    pub reason: Option<String>,
    pub phase: Option<Phase>,
    pub log: Vec<String>,
    pub advice: Vec<String>,
    /// The line the advice was read from.
    #[serde(skip)]
    pub advice_from: Option<String>,
    pub hardening: HardeningView,
    pub as_written: Option<Run>,
    pub hardened: Option<Run>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EngineInfo {
    pub server: String,
    pub compose: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub engine: EngineInfo,
    pub project: String,
    pub services: Vec<ServiceReport>,
}

impl Report {
    /// 0: every checked service works hardened; 1: one breaks hardened.
    pub fn breaks(&self) -> bool {
        self.services
            .iter()
            .any(|s| s.verdict == Verdict::BreaksHardened)
    }
}

/// What the advisor reads from a failure: the failure's own detail first, then the log
/// from its end (the latest lines are the ones nearest the failure). The first line that
/// names a binary the run found file capabilities on, or that a specific signature
/// explains, gives the capabilities to add back (those not already in `cap_add`). A
/// harmless earlier line (postgres's `chmod … || :`) is not advice.
pub fn advise(detail: &str, run: &Run, cap_add: &[String]) -> (Vec<String>, Option<String>) {
    let missing = |caps: &[String]| -> Vec<String> {
        caps.iter()
            .filter(|c| !cap_add.iter().any(|a| a.eq_ignore_ascii_case(c)))
            .cloned()
            .collect()
    };
    // The phase's own detail first, then the log lines that say the program gave up: an
    // entrypoint's harmless warnings (`chmod … || :`) often follow the fatal line in the
    // log, in no fixed order; then the rest.
    let tail = || run.log.iter().rev().map(String::as_str);
    let lines = std::iter::once(detail)
        .chain(tail().filter(|l| looks_fatal(l)))
        .chain(tail());
    for line in lines {
        let file =
            super::filecaps::refused_paths(line).and_then(|p| Some((run.file_caps.get(&p)?, p)));
        if let Some((caps, path)) = file {
            let from = format!(
                "{line} ({path} has the file capabilities {})",
                caps.join(", ")
            );
            return (missing(caps), Some(from));
        }
        let Some(sig) = crate::advisor::explain(line) else {
            continue;
        };
        if sig.id == "generic-eperm" {
            continue;
        }
        return (missing(&sig.add_caps), Some(line.to_string()));
    }
    if let Some(from) = stuck_signalling(detail, run) {
        return (missing(&["KILL".to_string()]), Some(from));
    }
    (Vec::new(), None)
}

/// Whether a log line reports that the program gave up, rather than a warning it lives with.
fn looks_fatal(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    [
        "error", "fatal", "emerg", "panic", "failed", "cannot", "can't", "unable",
    ]
    .iter()
    .any(|w| l.contains(w))
}

/// A stop that ended in SIGKILL while a root process ran processes of another uid: the
/// parent could not pass the signal on without KILL (php-fpm's master, supervisors).
fn stuck_signalling(detail: &str, run: &Run) -> Option<String> {
    if !detail.starts_with("killed after") {
        return None;
    }
    let root = run.processes.iter().find(|p| p.uid == 0)?;
    let other = run.processes.iter().find(|p| p.uid != 0)?;
    Some(format!(
        "{detail}; {} (uid 0) runs processes as uid {} and signals them on stop, which needs KILL",
        root.command, other.uid
    ))
}

/// The verdict for one service from its runs (`None`: not run).
pub fn judge(
    service: &str,
    skip: Option<String>,
    hardening: HardeningView,
    as_written: Option<Run>,
    hardened: Option<Run>,
) -> ServiceReport {
    let mut r = ServiceReport {
        service: service.to_string(),
        verdict: Verdict::Skipped,
        reason: skip,
        phase: None,
        log: Vec::new(),
        advice: Vec::new(),
        advice_from: None,
        hardening,
        as_written,
        hardened,
    };
    if r.reason.is_some() {
        return r;
    }
    if let Some((run, p)) = failure(r.as_written.as_ref()) {
        r.verdict = Verdict::BrokenAsWritten;
        r.phase = Some(p.phase);
        r.reason = Some(format!(
            "it fails as written too, at {}: {} (not the hardening's doing)",
            p.phase.as_str(),
            p.detail
        ));
        r.log = run.log.clone();
        return r;
    }
    match failure(r.hardened.as_ref()) {
        Some((run, p)) => {
            r.verdict = Verdict::BreaksHardened;
            r.phase = Some(p.phase);
            r.reason = Some(p.detail.clone());
            r.log = run.log.clone();
            (r.advice, r.advice_from) = advise(&p.detail, run, &r.hardening.cap_add);
        }
        None if r.hardened.is_none() || r.as_written.is_none() => {
            r.reason = Some("not run".into());
        }
        None => r.verdict = Verdict::WorksHardened,
    }
    r
}

fn failure(run: Option<&Run>) -> Option<(&Run, &super::state::PhaseResult)> {
    let run = run?;
    run.failed().map(|p| (run, p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::state::PhaseResult;

    fn run(phases: &[(Phase, bool, &str)], log: &[&str]) -> Run {
        Run {
            phases: phases
                .iter()
                .map(|(p, ok, d)| PhaseResult::new(*p, *ok, 1.0, d.to_string()))
                .collect(),
            log: log.iter().map(|l| l.to_string()).collect(),
            ..Run::default()
        }
    }

    fn good() -> Run {
        run(
            &[
                (Phase::FirstStart, true, "started"),
                (Phase::Ready, true, "healthy"),
                (Phase::Restart, true, "healthy"),
                (Phase::Stop, true, "exit 0 in 0.2 s"),
            ],
            &["ready"],
        )
    }

    fn caps(c: &[&str]) -> HardeningView {
        HardeningView {
            cap_drop: vec!["ALL".into()],
            cap_add: c.iter().map(|s| s.to_string()).collect(),
            ..HardeningView::default()
        }
    }

    #[test]
    fn works_when_both_runs_pass() {
        let r = judge("db", None, caps(&[]), Some(good()), Some(good()));
        assert_eq!(r.verdict, Verdict::WorksHardened);
        assert_eq!((r.phase, r.reason), (None, None));
        assert!(r.log.is_empty());
    }

    #[test]
    fn the_fatal_line_wins_over_warnings_logged_after_it() {
        let hardened = run(
            &[(Phase::FirstStart, false, "exited with 1")],
            &[
                "error: failed switching to \"postgres\": operation not permitted",
                "chmod: changing permissions of '/var/lib/postgresql/data': Operation not permitted",
                "chmod: changing permissions of '/var/run/postgresql': Operation not permitted",
            ],
        );
        let r = judge("db", None, caps(&["CHOWN"]), Some(good()), Some(hardened));
        assert_eq!(r.phase, Some(Phase::FirstStart));
        assert_eq!(r.advice, ["SETGID", "SETUID"]);
    }

    #[test]
    fn a_restart_failure_names_the_phase_and_the_cap_to_add_back() {
        let hardened = run(
            &[
                (Phase::FirstStart, true, "started"),
                (Phase::Ready, true, "healthy"),
                (Phase::Restart, false, "exited with 1"),
            ],
            &[
                "chmod: changing permissions of '/var/run/postgresql': Operation not permitted",
                "find: '/var/lib/postgresql/data': Permission denied",
            ],
        );
        let r = judge(
            "db",
            None,
            caps(&["SETGID", "SETUID"]),
            Some(good()),
            Some(hardened),
        );
        assert_eq!(r.verdict, Verdict::BreaksHardened);
        assert_eq!(r.phase, Some(Phase::Restart));
        assert_eq!(r.advice, ["DAC_OVERRIDE"]);
        assert_eq!(
            r.advice_from.as_deref(),
            Some("find: '/var/lib/postgresql/data': Permission denied")
        );
    }

    #[test]
    fn advice_leaves_out_caps_already_added_and_reads_the_detail_first() {
        let r = run(
            &[],
            &["nginx: [emerg] setgid(101) failed (1: Operation not permitted)"],
        );
        let (c, _) = advise("exited with 1", &r, &["SETUID".into()]);
        assert_eq!(c, ["SETGID"]);
        let (c, from) = advise("unhealthy: ping: permission denied", &r, &[]);
        assert_eq!(c, ["NET_RAW"]);
        assert_eq!(from.as_deref(), Some("unhealthy: ping: permission denied"));
        let r = run(&[], &["something: Operation not permitted"]);
        let (c, from) = advise("exited with 1", &r, &[]);
        assert!(c.is_empty() && from.is_none());
    }

    #[test]
    fn a_binary_refused_for_its_file_capability_names_that_capability() {
        let mut r = run(
            &[],
            &[
                "/usr/local/bin/lab-serve: 5: /usr/local/lib/lab/httpd: Operation not permitted",
                "lab-serve: /usr/local/lib/lab/httpd exited with status 126",
            ],
        );
        let (c, _) = advise("exited with 126", &r, &[]);
        assert!(c.is_empty(), "no file caps read: no advice");
        r.file_caps.insert(
            "/usr/local/lib/lab/httpd".into(),
            vec!["NET_BIND_SERVICE".into()],
        );
        let (c, from) = advise("exited with 126", &r, &[]);
        assert_eq!(c, ["NET_BIND_SERVICE"]);
        assert!(
            from.unwrap()
                .contains("has the file capabilities NET_BIND_SERVICE")
        );
    }

    #[test]
    fn a_root_parent_killed_at_stop_with_children_of_another_uid_needs_kill() {
        let p = |pid, uid| crate::runtime::procfs::Process {
            pid,
            uid,
            gid: uid,
            command: "php-fpm".into(),
            cap_eff: "00000000000000c0".into(),
            cap_bnd: "00000000000000c0".into(),
            caps_bnd: vec!["SETGID".into(), "SETUID".into()],
            no_new_privs: true,
        };
        let mut r = run(&[], &["NOTICE: Finishing ..."]);
        let detail = "killed after the 10 s grace period (exit 137): SIGTERM did not stop it";
        assert!(advise(detail, &r, &[]).0.is_empty(), "no processes seen");
        r.processes = vec![p(1, 0), p(7, 33)];
        let (c, from) = advise(detail, &r, &["SETGID".into(), "SETUID".into()]);
        assert_eq!(c, ["KILL"]);
        assert!(from.unwrap().contains("uid 33"));
        assert!(advise(detail, &r, &["KILL".into()]).0.is_empty());
        assert!(advise("exit 1 after 0.2 s", &r, &[]).0.is_empty());
    }

    #[test]
    fn a_failure_as_written_is_not_ours() {
        let bad = run(&[(Phase::FirstStart, false, "exited with 3")], &["boom"]);
        let r = judge("x", None, caps(&[]), Some(bad.clone()), Some(bad));
        assert_eq!(r.verdict, Verdict::BrokenAsWritten);
        assert_eq!(r.phase, Some(Phase::FirstStart));
        assert!(r.reason.unwrap().contains("as written"));
        assert_eq!(r.log, ["boom"]);
    }

    #[test]
    fn skipped_keeps_its_reason_and_runs_nothing() {
        let r = judge("p", Some("privileged".into()), caps(&[]), None, None);
        assert_eq!(r.verdict, Verdict::Skipped);
        assert_eq!(r.reason.as_deref(), Some("privileged"));
    }

    #[test]
    fn the_json_report_has_the_contract_shape() {
        let report = Report {
            schema: SCHEMA,
            engine: EngineInfo {
                server: "20.10.24+dfsg1".into(),
                compose: "2.40.3".into(),
            },
            project: "lab/projects/pg".into(),
            services: vec![judge(
                "db",
                None,
                caps(&["CHOWN"]),
                Some(good()),
                Some(good()),
            )],
        };
        let v = serde_json::to_value(&report).unwrap();
        assert_eq!(v["schema"], SCHEMA);
        let s = &v["services"][0];
        assert_eq!(s["verdict"], "works-hardened");
        assert_eq!(s["phase"], serde_json::Value::Null);
        assert_eq!(s["hardening"]["cap_add"][0], "CHOWN");
        assert_eq!(s["hardened"]["phases"][2]["phase"], "restart");
        assert!(s["hardened"].get("log").is_none());
    }
}

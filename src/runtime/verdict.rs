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
/// from its end (the latest lines are the ones nearest the failure); the first line that
/// a specific signature explains gives the capabilities to add back (those not already
/// in `cap_add`). A harmless earlier line (postgres's `chmod … || :`) is not advice.
pub fn advise(detail: &str, log: &[String], cap_add: &[String]) -> (Vec<String>, Option<String>) {
    let lines = std::iter::once(detail).chain(log.iter().rev().map(String::as_str));
    for line in lines {
        let Some(sig) = crate::advisor::explain(line) else {
            continue;
        };
        if sig.id == "generic-eperm" {
            continue;
        }
        let caps = sig
            .add_caps
            .iter()
            .filter(|c| !cap_add.iter().any(|a| a.eq_ignore_ascii_case(c)))
            .cloned()
            .collect();
        return (caps, Some(line.to_string()));
    }
    (Vec::new(), None)
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
            (r.advice, r.advice_from) = advise(&p.detail, &run.log, &r.hardening.cap_add);
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
        let log = vec!["nginx: [emerg] setgid(101) failed (1: Operation not permitted)".into()];
        let (c, _) = advise("exited with 1", &log, &["SETUID".into()]);
        assert_eq!(c, ["SETGID"]);
        let (c, from) = advise("unhealthy: ping: permission denied", &log, &[]);
        assert_eq!(c, ["NET_RAW"]);
        assert_eq!(from.as_deref(), Some("unhealthy: ping: permission denied"));
        let (c, from) = advise(
            "exited with 1",
            &["something: Operation not permitted".into()],
            &[],
        );
        assert!(c.is_empty() && from.is_none());
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

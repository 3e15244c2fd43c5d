//! The text report of `verify`: per service its verdict, the hardening it ran with, each
//! phase, every process with its uid/gid and capability sets, and for a failure the log
//! line and what to add back. Log lines come from containers: control characters are
//! escaped.

use std::io::Write;

use crate::runtime::lifecycle::Run;
use crate::runtime::verdict::{Report, ServiceReport, Verdict};

/// A container's text made safe for a terminal.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn list(v: &[String]) -> String {
    format!("[{}]", v.join(", "))
}

fn phases(run: &Run) -> String {
    run.phases
        .iter()
        .map(|p| {
            format!(
                "{} {} {:.1} s ({})",
                p.phase.as_str(),
                if p.ok { "ok" } else { "FAILED" },
                p.seconds,
                clean(&p.detail)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// One line per distinct process (same uid, gid, command and sets), with how many.
fn processes(out: &mut dyn Write, label: &str, run: &Run) -> std::io::Result<()> {
    let mut groups: Vec<(&crate::runtime::procfs::Process, usize)> = Vec::new();
    for p in &run.processes {
        let same = |q: &crate::runtime::procfs::Process| {
            (
                q.uid,
                q.gid,
                &q.command,
                &q.cap_eff,
                &q.cap_bnd,
                q.no_new_privs,
            ) == (
                p.uid,
                p.gid,
                &p.command,
                &p.cap_eff,
                &p.cap_bnd,
                p.no_new_privs,
            )
        };
        match groups.iter_mut().find(|(q, _)| same(q)) {
            Some((_, n)) => *n += 1,
            None => groups.push((p, 1)),
        }
    }
    for (p, n) in groups {
        let pids = if n > 1 {
            format!("{} (x{n})", p.pid)
        } else {
            p.pid.to_string()
        };
        writeln!(
            out,
            "    {label:<10} pid {pids:<11} uid {:<5} gid {:<5} {:<14} CapEff {} CapBnd {} {} NoNewPrivs {}",
            p.uid,
            p.gid,
            clean(&p.command),
            p.cap_eff,
            p.cap_bnd,
            list(&p.caps_bnd),
            u8::from(p.no_new_privs)
        )?;
    }
    Ok(())
}

fn service(out: &mut dyn Write, s: &ServiceReport) -> std::io::Result<()> {
    let head = match (s.verdict, s.phase) {
        (Verdict::WorksHardened, _) => "works hardened".to_string(),
        (v, Some(p)) => format!("{} at {}", v.as_str(), p.as_str()),
        (v, None) => v.as_str().to_string(),
    };
    let secs: Vec<String> = [("as written", &s.as_written), ("hardened", &s.hardened)]
        .iter()
        .filter_map(|(l, r)| Some(format!("{l} {:.1} s", r.as_ref()?.seconds())))
        .collect();
    if secs.is_empty() {
        writeln!(out, "{}: {head}", clean(&s.service))?;
    } else {
        writeln!(out, "{}: {head} ({})", clean(&s.service), secs.join(", "))?;
    }
    if let Some(r) = &s.reason {
        writeln!(out, "  reason: {}", clean(r))?;
    }
    if s.verdict == Verdict::Skipped {
        return Ok(());
    }
    let h = &s.hardening;
    writeln!(
        out,
        "  hardening: user {} cap_drop {} cap_add {} security_opt {}",
        h.user.as_deref().map_or("(image's)".to_string(), clean),
        list(&h.cap_drop),
        list(&h.cap_add),
        list(&h.security_opt)
    )?;
    for (label, run) in [("as written", &s.as_written), ("hardened", &s.hardened)] {
        if let Some(run) = run {
            writeln!(out, "  {label}: {}", phases(run))?;
        }
    }
    for (label, run) in [("as written", &s.as_written), ("hardened", &s.hardened)] {
        if let Some(run) = run {
            processes(out, label, run)?;
        }
    }
    if !s.log.is_empty() {
        writeln!(out, "  log (last lines):")?;
        for l in s.log.iter().rev().take(8).rev() {
            writeln!(out, "    | {}", clean(l))?;
        }
    }
    if s.verdict == Verdict::BreaksHardened {
        match (&s.advice[..], &s.advice_from) {
            ([], _) => writeln!(
                out,
                "  advice: none from the log (see `compose-harden why`)"
            )?,
            (caps, from) => {
                writeln!(out, "  advice: add back {}", caps.join(", "))?;
                if let Some(f) = from {
                    writeln!(out, "    from: {}", clean(f))?;
                }
            }
        }
    }
    Ok(())
}

pub(super) fn write(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "verify {} on engine {}, compose {}",
        clean(&report.project),
        clean(&report.engine.server),
        clean(&report.engine.compose)
    )?;
    for s in &report.services {
        service(out, s)?;
    }
    writeln!(out, "{}", super::verify::tally(&report.services))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::runtime::model::HardeningView;
    use crate::runtime::procfs::parse_status;
    use crate::runtime::state::{Phase, PhaseResult};
    use crate::runtime::verdict::{self, EngineInfo};

    fn status(uid: u32, bnd: &str) -> String {
        format!(
            "Name:\tnginx\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nGid:\t{uid}\t{uid}\t{uid}\t{uid}\n\
CapEff:\t0000000000000000\nCapBnd:\t{bnd}\nNoNewPrivs:\t1\n"
        )
    }

    #[test]
    fn a_report_shows_phases_processes_and_advice() {
        let ok = |p| PhaseResult::new(p, true, 1.0, "healthy".into());
        let written = Run {
            phases: vec![
                ok(Phase::FirstStart),
                ok(Phase::Ready),
                ok(Phase::Restart),
                ok(Phase::Stop),
            ],
            processes: [(1, 0), (7, 33), (8, 33)]
                .iter()
                .map(|&(pid, uid)| parse_status(pid, &status(uid, "00000000a80425fb")).unwrap())
                .collect(),
            ..Run::default()
        };
        let hardened = Run {
            phases: vec![PhaseResult::new(
                Phase::FirstStart,
                false,
                0.5,
                "exited with 1".into(),
            )],
            log: vec![
                "[emerg] chown(\"/var/cache/x\", 33) failed (1: Operation not permitted)\u{1b}[0m"
                    .into(),
            ],
            ..Run::default()
        };
        let h = HardeningView {
            cap_drop: vec!["ALL".into()],
            cap_add: vec!["SETGID".into(), "SETUID".into()],
            ..HardeningView::default()
        };
        let report = Report {
            schema: verdict::SCHEMA,
            engine: EngineInfo {
                server: "20.10.24".into(),
                compose: "2.40.3".into(),
            },
            project: "lab/projects/web".into(),
            services: vec![verdict::judge(
                "web",
                None,
                h,
                Some(written),
                Some(hardened),
            )],
        };
        let mut out = Vec::new();
        write(&report, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("web: breaks-hardened at first-start (as written 4.0 s, hardened 0.5 s)"),
            "{text}"
        );
        assert!(
            text.contains("hardened: first-start FAILED 0.5 s (exited with 1)"),
            "{text}"
        );
        // The two workers are one line.
        assert!(text.contains("pid 7 (x2)"), "{text}");
        assert_eq!(text.matches("uid 33").count(), 1, "{text}");
        assert!(text.contains("advice: add back CHOWN\n"), "{text}");
        assert!(text.contains("\\u{1b}[0m"), "escaped: {text}");
        assert!(!text.contains('\u{1b}'));
        assert!(
            text.ends_with("0 works hardened, 1 breaks hardened, 0 broken as written, 0 skipped\n")
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(clean("a\u{1b}[31mb\r"), "a\\u{1b}[31mb\\r");
        assert_eq!(clean("tab\tok é"), "tab\tok é");
    }
}

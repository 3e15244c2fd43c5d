//! What a run observes and how it judges it, apart from the engine calls so it can be
//! tested on recorded `docker inspect` output: a container's state, whether a service is
//! ready, failed or still coming up, and whether it stopped gracefully.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::Value;

use super::procfs::Process;

/// The phases of a lifecycle run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    FirstStart,
    Ready,
    Restart,
    Stop,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::FirstStart => "first-start",
            Phase::Ready => "ready",
            Phase::Restart => "restart",
            Phase::Stop => "stop",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseResult {
    pub phase: Phase,
    pub ok: bool,
    pub seconds: f64,
    pub detail: String,
}

impl PhaseResult {
    pub fn new(phase: Phase, ok: bool, seconds: f64, detail: String) -> PhaseResult {
        PhaseResult {
            phase,
            ok,
            seconds: (seconds * 10.0).round() / 10.0,
            detail,
        }
    }
}

/// One service's run: the phases it went through and the evidence.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Run {
    pub phases: Vec<PhaseResult>,
    pub processes: Vec<Process>,
    pub restarts: u64,
    pub exit_code: Option<i64>,
    /// The last log lines (the report shows them for the failing run).
    #[serde(skip)]
    pub log: Vec<String>,
    /// File capabilities of the binaries a failed run's log says could not be run.
    #[serde(skip)]
    pub file_caps: BTreeMap<String, Vec<String>>,
}

impl Run {
    /// The first phase that failed.
    pub fn failed(&self) -> Option<&PhaseResult> {
        self.phases.iter().find(|p| !p.ok)
    }

    /// Seconds the run's phases took.
    pub fn seconds(&self) -> f64 {
        self.phases.iter().map(|p| p.seconds).sum()
    }
}

/// A container as `docker inspect` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    pub id: String,
    pub service: String,
    /// created, running, restarting, exited, dead …
    pub status: String,
    pub health: Option<String>,
    /// The output of the latest health probe.
    pub health_output: String,
    pub exit_code: i64,
    pub restarts: u64,
    pub error: String,
    pub finished_at: String,
    pub restart_policy: String,
}

impl Container {
    pub fn from_inspect(v: &Value) -> Option<Container> {
        let s = |x: &Value| x.as_str().unwrap_or("").to_string();
        let state = v.get("State")?;
        let health = state.get("Health").filter(|h| !h.is_null());
        Some(Container {
            id: s(v.get("Id")?),
            service: s(&v["Config"]["Labels"]["com.docker.compose.service"]),
            status: s(&state["Status"]),
            health: health.map(|h| s(&h["Status"])),
            health_output: health
                .and_then(|h| h["Log"].as_array()?.last().map(|l| s(&l["Output"])))
                .unwrap_or_default()
                .trim()
                .to_string(),
            exit_code: state["ExitCode"].as_i64().unwrap_or(0),
            restarts: v["RestartCount"].as_u64().unwrap_or(0),
            error: s(&state["Error"]),
            finished_at: s(&state["FinishedAt"]),
            restart_policy: s(&v["HostConfig"]["RestartPolicy"]["Name"]),
        })
    }

    /// Seconds from `began` until the container finished, if it finished after it.
    pub fn stopped_after(&self, began: SystemTime) -> Option<f64> {
        let end = rfc3339(&self.finished_at)?;
        let began = began
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()?
            .as_secs_f64();
        (end >= began).then_some(end - began)
    }
}

/// Seconds since the epoch of an RFC 3339 UTC time (`2026-12-01T23:55:01.12345Z`).
pub fn rfc3339(s: &str) -> Option<f64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let ([y, m, day], [hh, mm, ss]) = (&d[..], &t[..]) else {
        return None;
    };
    let (y, m, day, hh, mm, ss) = (*y, *m, *day, *hh, *mm, *ss);
    if y < 1970 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let frac: f64 = format!("0.{frac}").parse().ok()?;
    Some((days * 86_400 + hh * 3600 + mm * 60 + ss) as f64 + frac)
}

/// Per service, the error `docker compose up` printed for its container
/// (` Container <project>-<svc>-1  <message>`), progress words left out.
pub fn container_errors(stderr: &str, project: &str) -> BTreeMap<String, String> {
    const PROGRESS: &[&str] = &[
        "Creating",
        "Created",
        "Starting",
        "Started",
        "Waiting",
        "Healthy",
        "Running",
        "Recreate",
        "Recreated",
        "Stopping",
        "Stopped",
        "Removing",
        "Removed",
        "Exited",
    ];
    let mut out = BTreeMap::new();
    for line in stderr.lines() {
        let Some(rest) = line.trim().strip_prefix("Container ") else {
            continue;
        };
        let Some((name, msg)) = rest.split_once(char::is_whitespace) else {
            continue;
        };
        let msg = msg.trim();
        if msg.is_empty() || PROGRESS.contains(&msg) {
            continue;
        }
        let svc = name
            .strip_prefix(project)
            .and_then(|n| n.strip_prefix('-'))
            .and_then(|n| n.rsplit_once('-'))
            .filter(|(_, k)| k.chars().all(|c| c.is_ascii_digit()))
            .map(|(s, _)| s.to_string());
        if let Some(svc) = svc {
            out.insert(svc, msg.to_string());
        }
    }
    out
}

/// Where a service stands while a run waits for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    /// Not decided yet; `running` when its container runs (the settle clock starts).
    Wait {
        running: bool,
    },
    Ok(String),
    /// `exited`: it stopped or never started (rather than failing to become healthy).
    Failed {
        exited: bool,
        detail: String,
    },
}

/// Judge a service's container: `base` is its restart count when the wait began,
/// `waited` the time since then, `running_for` how long it has been seen running,
/// `budget` its healthcheck's time (`None`: no healthcheck).
pub fn judge(
    c: Option<&Container>,
    base: u64,
    waited: Duration,
    running_for: Option<Duration>,
    budget: Option<Duration>,
    settle: Duration,
) -> Ready {
    let Some(c) = c else {
        return if waited > Duration::from_secs(10) {
            Ready::Failed {
                exited: true,
                detail: "no container".into(),
            }
        } else {
            Ready::Wait { running: false }
        };
    };
    if c.restarts > base || c.status == "restarting" {
        return Ready::Failed {
            exited: true,
            // Between two starts the engine may already show the new run's exit code 0.
            detail: match c.exit_code {
                0 => "exited and was restarted by its restart policy".to_string(),
                code => format!("exited with {code} and was restarted by its restart policy"),
            },
        };
    }
    match c.status.as_str() {
        "running" => {}
        "exited" | "dead" if c.exit_code == 0 && matches!(c.restart_policy.as_str(), "" | "no") => {
            return Ready::Ok("completed (exit 0)".into());
        }
        "created" if waited < Duration::from_secs(3) => return Ready::Wait { running: false },
        other => {
            let mut detail = match other {
                "created" => "never started".to_string(),
                _ => format!("exited with {}", c.exit_code),
            };
            if !c.error.is_empty() {
                detail.push_str(&format!(": {}", c.error));
            }
            return Ready::Failed {
                exited: true,
                detail,
            };
        }
    }
    match (c.health.as_deref(), budget) {
        (Some("healthy"), _) => Ready::Ok("healthy".into()),
        (Some("unhealthy"), _) => Ready::Failed {
            exited: false,
            detail: unhealthy(c),
        },
        (Some(_), Some(b)) if waited > b => Ready::Failed {
            exited: false,
            detail: format!("not healthy after {} s", b.as_secs()),
        },
        (Some(_), _) => Ready::Wait { running: true },
        (None, _) => match running_for {
            Some(r) if r >= settle => {
                Ready::Ok(format!("running {} s with no restart", settle.as_secs()))
            }
            _ => Ready::Wait { running: true },
        },
    }
}

fn unhealthy(c: &Container) -> String {
    if c.health_output.is_empty() {
        "unhealthy".into()
    } else {
        let last = c.health_output.lines().last().unwrap_or("");
        format!("unhealthy: {last}")
    }
}

/// Judge a graceful stop: a clean exit (0, or 143 for a process that SIGTERM ended)
/// within the grace period. 137 after the grace period is Docker's SIGKILL.
pub fn judge_stop(
    c: &Container,
    seconds: f64,
    grace: Duration,
    error: Option<String>,
) -> PhaseResult {
    let g = grace.as_secs_f64();
    let (ok, detail) = match c.exit_code {
        _ if c.status == "running" => (
            false,
            format!("still running: {}", error.unwrap_or_default()),
        ),
        0 | 143 if seconds < g => (true, format!("exit {} in {seconds:.1} s", c.exit_code)),
        137 if seconds + 0.5 >= g => (
            false,
            format!("killed after the {g:.0} s grace period (exit 137): SIGTERM did not stop it"),
        ),
        code => (false, format!("exit {code} after {seconds:.1} s")),
    };
    PhaseResult::new(Phase::Stop, ok, seconds, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inspected() -> Vec<Container> {
        let v: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/verify/inspect.json")).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .filter_map(Container::from_inspect)
            .collect()
    }

    fn by(service: &str) -> Container {
        inspected()
            .into_iter()
            .find(|c| c.service == service)
            .unwrap()
    }

    const S: Duration = Duration::from_secs(5);

    #[test]
    fn reads_recorded_inspect_output() {
        let db = by("db");
        assert_eq!(db.status, "running");
        assert_eq!(db.health.as_deref(), Some("healthy"));
        let web = by("web");
        assert_eq!(web.status, "exited");
        assert_eq!(web.exit_code, 1);
        assert_eq!(web.health, None);
    }

    #[test]
    fn ready_when_healthy_or_settled() {
        let db = by("db");
        let b = Some(Duration::from_secs(60));
        assert_eq!(
            judge(Some(&db), 0, S, None, b, S),
            Ready::Ok("healthy".into())
        );
        let mut plain = db.clone();
        plain.health = None;
        assert_eq!(
            judge(Some(&plain), 0, S, Some(Duration::from_secs(1)), None, S),
            Ready::Wait { running: true }
        );
        assert!(matches!(
            judge(Some(&plain), 0, S, Some(S), None, S),
            Ready::Ok(_)
        ));
    }

    #[test]
    fn an_exit_or_a_restart_fails_and_unhealthy_is_not_an_exit() {
        let web = by("web");
        assert_eq!(
            judge(Some(&web), 0, S, None, None, S),
            Ready::Failed {
                exited: true,
                detail: "exited with 1".into()
            }
        );
        let mut db = by("db");
        db.restarts = 2;
        assert!(matches!(
            judge(Some(&db), 1, S, None, None, S),
            Ready::Failed { exited: true, .. }
        ));
        db.restarts = 0;
        db.health = Some("unhealthy".into());
        db.health_output = "PING 127.0.0.1\nping: socket: Operation not permitted".into();
        assert_eq!(
            judge(Some(&db), 0, S, None, None, S),
            Ready::Failed {
                exited: false,
                detail: "unhealthy: ping: socket: Operation not permitted".into()
            }
        );
        db.health = Some("starting".into());
        let b = Some(Duration::from_secs(30));
        assert_eq!(
            judge(Some(&db), 0, Duration::from_secs(31), None, b, S),
            Ready::Failed {
                exited: false,
                detail: "not healthy after 30 s".into()
            }
        );
    }

    #[test]
    fn a_one_shot_job_that_exits_zero_is_done() {
        let mut job = by("web");
        job.exit_code = 0;
        assert_eq!(
            judge(Some(&job), 0, S, None, None, S),
            Ready::Ok("completed (exit 0)".into())
        );
        job.restart_policy = "always".into();
        assert!(matches!(
            judge(Some(&job), 0, S, None, None, S),
            Ready::Failed { .. }
        ));
    }

    #[test]
    fn a_missing_container_waits_then_fails() {
        assert_eq!(
            judge(None, 0, S, None, None, S),
            Ready::Wait { running: false }
        );
        assert!(matches!(
            judge(None, 0, Duration::from_secs(11), None, None, S),
            Ready::Failed { .. }
        ));
    }

    #[test]
    fn graceful_stop_within_the_grace_period() {
        let mut c = by("web");
        let g = Duration::from_secs(10);
        c.exit_code = 0;
        assert!(judge_stop(&c, 0.4, g, None).ok);
        c.exit_code = 143;
        assert!(judge_stop(&c, 0.4, g, None).ok);
        c.exit_code = 137;
        let r = judge_stop(&c, 10.1, g, None);
        assert!(!r.ok);
        assert!(r.detail.contains("grace period"), "{}", r.detail);
        c.exit_code = 1;
        assert_eq!(judge_stop(&c, 0.2, g, None).detail, "exit 1 after 0.2 s");
    }

    #[test]
    fn names_the_service_the_engine_refused() {
        let stderr = " Network chv-1-x_default  Created\n Container chv-1-x-my-db-1  Creating\n \
Container chv-1-x-my-db-1  can't set healthcheck.start_interval as feature require Docker Engine v25 or later\n \
Container chv-1-x-web-1  Started\ncan't set healthcheck.start_interval\n";
        let e = container_errors(stderr, "chv-1-x");
        assert_eq!(e.len(), 1);
        assert!(e["my-db"].starts_with("can't set healthcheck.start_interval"));
    }

    #[test]
    fn parses_docker_times() {
        assert_eq!(rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(rfc3339("2026-12-01T23:55:01.5Z"), Some(1_796_169_301.5));
        assert_eq!(rfc3339("0001-01-01T00:00:00Z"), None);
        assert_eq!(rfc3339("garbage"), None);
        let c = by("web");
        // Recorded: it finished at 23:43:33.1627 (seconds since 23:43:33).
        let began = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_168_613);
        let secs = c.stopped_after(began).unwrap();
        assert!((secs - 0.1627).abs() < 0.001, "{secs}");
        assert_eq!(c.stopped_after(began + Duration::from_secs(5)), None);
    }
}

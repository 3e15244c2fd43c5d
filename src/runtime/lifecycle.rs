//! The lifecycle runner: one run of a project on the engine, under a unique project name,
//! through first start on empty volumes, ready, restart on the data it wrote and ready
//! again, and a graceful stop; with the evidence of every service (uids and capability
//! sets of every process, restarts, exit code, last log lines). Everything it made is
//! removed when the run ends, also on an error or Ctrl-C.
//!
//! The API (stable; `learn` builds on it):
//! ```text
//! let engine = docker::Engine::connect()?;
//! let project = model::Project::resolve(&engine, &files, &dir)?;
//! let runs: BTreeMap<String, Run> =
//!     lifecycle::run(&engine, &project, &services, &overrides, &Options::new(stop))?;
//! runs["db"].failed()  // None: it passed every phase; Some(phase): the first that failed
//! ```
//! `overrides` maps a service to the [`Hardening`] applied on top of the model
//! (`cap_drop: [ALL]`, its `cap_add`, `user:`, no-new-privileges); a service without one
//! runs as the model says.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::docker::{CallError, Engine, Output};
use super::filecaps;
use super::model::{self, Hardening, Project};
use super::procfs::{self, Process};

pub use super::state::{Container, Phase, PhaseResult, Run};

/// How a run waits and reports.
pub struct Options<'a> {
    /// A service without a healthcheck is ready after running this long with no restart.
    pub settle: Duration,
    /// The least time a healthcheck is given to say healthy.
    pub ready_floor: Duration,
    /// Raised by Ctrl-C: the run stops at once and removes what it made.
    pub stop: Arc<AtomicBool>,
    /// Progress lines for a person (`hardened: db healthy in 2.1 s`).
    pub progress: &'a (dyn Fn(&str) + Sync),
    /// Names the run in progress lines and in its project name (`written`, `hardened`).
    pub label: &'a str,
}

impl<'a> Options<'a> {
    pub fn new(stop: Arc<AtomicBool>) -> Options<'a> {
        Options {
            settle: Duration::from_secs(5),
            ready_floor: Duration::from_secs(30),
            stop,
            progress: &|_| {},
            label: "run",
        }
    }
}

/// Lines of log kept per service.
pub const LOG_LINES: usize = 20;

/// A unique Compose project name for one run.
fn unique_name(label: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() % 100_000);
    let clean: String = label
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    format!("chverify-{}-{t}-{n}-{clean}", std::process::id())
}

/// `docker compose` for one run's project.
struct Compose<'a> {
    engine: &'a Engine,
    name: String,
    file: PathBuf,
    dir: PathBuf,
    stop: Arc<AtomicBool>,
}

impl Compose<'_> {
    fn call(&self, args: &[&str], timeout: Duration, stoppable: bool) -> Result<Output, String> {
        let file = self.file.display().to_string();
        let dir = self.dir.display().to_string();
        let mut all = vec![
            "compose",
            "-p",
            &self.name,
            "-f",
            &file,
            "--project-directory",
            &dir,
        ];
        all.extend_from_slice(args);
        let stop = stoppable.then_some(&*self.stop);
        self.engine.call(&all, timeout, stop).map_err(|e| match e {
            CallError::Interrupted => "interrupted".to_string(),
            e => format!("docker compose {}: {e}", args.first().unwrap_or(&"")),
        })
    }

    /// The run's containers, by service (one per service: no `scale` here).
    fn observe(&self) -> Result<HashMap<String, Container>, String> {
        let label = format!("label=com.docker.compose.project={}", self.name);
        let ids = self
            .engine
            .call(
                &["ps", "-a", "-q", "--no-trunc", "--filter", &label],
                Duration::from_secs(30),
                Some(&self.stop),
            )
            .map_err(|e| format!("docker ps: {e}"))?;
        let ids: Vec<&str> = ids.stdout.split_whitespace().collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut args = vec!["inspect"];
        args.extend(&ids);
        let out = self
            .engine
            .call(&args, Duration::from_secs(30), Some(&self.stop))
            .map_err(|e| format!("docker inspect: {e}"))?;
        let v: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
        Ok(v.as_array()
            .into_iter()
            .flatten()
            .filter_map(Container::from_inspect)
            .map(|c| (c.service.clone(), c))
            .collect())
    }

    /// Uid, gid and capability sets of every process of a container.
    fn processes(&self, c: &Container) -> Vec<Process> {
        let Ok(top) = self.engine.call(
            &["top", &c.id, "-eo", "pid"],
            Duration::from_secs(30),
            Some(&self.stop),
        ) else {
            return Vec::new();
        };
        let pids: Vec<u32> = top
            .stdout
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        if pids.first().is_some_and(|&p| procfs::belongs_to(p, &c.id)) {
            return pids.into_iter().filter_map(procfs::read_host).collect();
        }
        // This host's /proc is not the engine's: read them inside the container.
        let script = "for d in /proc/[0-9]*; do echo \"== ${d#/proc/}\"; cat \"$d/status\"; done";
        self.engine
            .call(
                &["exec", &c.id, "sh", "-c", script],
                Duration::from_secs(30),
                Some(&self.stop),
            )
            .map(|o| procfs::parse_many(&o.stdout))
            .unwrap_or_default()
    }

    /// File capabilities of the binaries `lines` say could not be run (at most 3 looked at).
    fn file_caps(&self, id: &str, lines: &[&str]) -> BTreeMap<String, Vec<String>> {
        let mut paths: Vec<String> = lines
            .iter()
            .filter_map(|l| filecaps::refused_paths(l))
            .collect();
        paths.dedup();
        let mut out = BTreeMap::new();
        for path in paths.into_iter().take(3) {
            let src = format!("{id}:{path}");
            let Ok(o) = self.engine.call(
                &["cp", "-L", &src, "-"],
                Duration::from_secs(30),
                Some(&self.stop),
            ) else {
                continue;
            };
            if let Some(caps) = filecaps::from_tar(&o.raw).filter(|c| !c.is_empty()) {
                out.insert(path, caps);
            }
        }
        out
    }

    fn logs(&self, service: &str) -> Vec<String> {
        let tail = LOG_LINES.to_string();
        let Ok(out) = self.call(
            &[
                "logs",
                "--no-color",
                "--no-log-prefix",
                "--tail",
                &tail,
                service,
            ],
            Duration::from_secs(30),
            false,
        ) else {
            return Vec::new();
        };
        let mut lines: Vec<String> = out
            .stdout
            .lines()
            .chain(out.stderr.lines())
            .map(|l| l.trim_end().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        let extra = lines.len().saturating_sub(LOG_LINES);
        lines.drain(..extra);
        lines
    }
}

/// Removes the run's containers, networks and volumes when dropped.
struct Down<'a>(&'a Compose<'a>);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = self.0.call(
            &["down", "-v", "--remove-orphans", "-t", "3"],
            Duration::from_secs(180),
            false,
        );
    }
}

/// Run `services` of `project` (others are left out; overrides applied) through the
/// whole lifecycle. An `Err` is a run that could not be made at all (the engine refused
/// the project, Ctrl-C); a service that fails is an `Ok` run with a failed phase.
pub fn run(
    engine: &Engine,
    project: &Project,
    services: &[String],
    overrides: &BTreeMap<String, Hardening>,
    opts: &Options,
) -> Result<BTreeMap<String, Run>, String> {
    let tmp = tempfile::Builder::new()
        .prefix("compose-harden-verify-")
        .tempdir()
        .map_err(|e| format!("cannot make a temporary directory: {e}"))?;
    let name = unique_name(opts.label);
    let mut m = project.model.clone();
    model::retain(&mut m, services);
    for (svc, h) in overrides {
        model::apply(&mut m, svc, h);
    }
    model::neutralise(&mut m, &name);
    model::private_binds(&mut m, &project.dir, tmp.path())?;
    let file = tmp.path().join("compose.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&m).unwrap_or_default())
        .map_err(|e| format!("cannot write the run's model: {e}"))?;
    let compose = Compose {
        engine,
        name,
        file,
        dir: project.dir.clone(),
        stop: Arc::clone(&opts.stop),
    };
    let _down = Down(&compose);
    let mut runner = Runner {
        c: &compose,
        model: &m,
        opts,
        runs: services
            .iter()
            .map(|s| (s.clone(), Run::default()))
            .collect(),
        failed: BTreeMap::new(),
        up_seconds: 0.0,
    };
    runner.lifecycle()?;
    let seen = compose.observe()?;
    for (svc, r) in runner.runs.iter_mut() {
        r.log = compose.logs(svc);
        if let (Some(p), Some(c)) = (r.failed(), seen.get(svc)) {
            let lines: Vec<&str> = std::iter::once(p.detail.as_str())
                .chain(r.log.iter().map(String::as_str))
                .collect();
            r.file_caps = compose.file_caps(&c.id, &lines);
        }
    }
    Ok(runner.runs)
}

struct Runner<'a> {
    c: &'a Compose<'a>,
    model: &'a Value,
    opts: &'a Options<'a>,
    runs: BTreeMap<String, Run>,
    /// Services that failed a phase: they take no part in later phases.
    failed: BTreeMap<String, Phase>,
    /// How long `up` took (a first start that fails later counts it).
    up_seconds: f64,
}

impl Runner<'_> {
    fn say(&self, s: &str) {
        (self.opts.progress)(&format!("{}: {s}", self.opts.label));
    }

    fn live(&self) -> Vec<String> {
        self.runs
            .keys()
            .filter(|s| !self.failed.contains_key(*s))
            .cloned()
            .collect()
    }

    fn record(&mut self, svc: &str, r: PhaseResult) {
        if !r.ok {
            self.failed.entry(svc.to_string()).or_insert(r.phase);
            self.say(&format!("{svc}: {} failed: {}", r.phase.as_str(), r.detail));
        }
        if let Some(run) = self.runs.get_mut(svc) {
            // A start that then exits is one failed first start, not two entries.
            match run.phases.iter_mut().find(|p| p.phase == r.phase) {
                Some(p) => *p = r,
                None => run.phases.push(r),
            }
        }
    }

    fn lifecycle(&mut self) -> Result<(), String> {
        self.say("starting on empty volumes");
        let t = Instant::now();
        let up = self.c.call(
            &["up", "-d", "--no-build", "--pull", "never", "--no-color"],
            Duration::from_secs(300),
            true,
        )?;
        self.up_seconds = t.elapsed().as_secs_f64();
        let seen = self.c.observe()?;
        let refused = super::state::container_errors(&up.stderr, &self.c.name);
        if !up.ok && seen.values().all(|c| c.status == "created") {
            let named: Vec<String> = refused
                .iter()
                .map(|(s, m)| format!("service {s}: {m}"))
                .collect();
            return Err(format!(
                "the engine refused the project: {}",
                if named.is_empty() {
                    up.message()
                } else {
                    named.join("; ")
                }
            ));
        }
        let up_error = (!up.ok).then(|| up.message());
        for svc in self.live() {
            let started = seen.get(&svc).is_some_and(|c| c.status != "created");
            let detail = match (refused.get(&svc), &up_error, started) {
                (_, _, true) => "started".to_string(),
                (Some(e), _, false) | (None, Some(e), false) => e.clone(),
                (None, None, false) => "no container was started".to_string(),
            };
            let secs = t.elapsed().as_secs_f64();
            self.record(
                &svc,
                PhaseResult::new(Phase::FirstStart, started, secs, detail),
            );
        }
        self.ready(Phase::FirstStart)?;
        self.snapshot()?;
        let live = self.live();
        if !live.is_empty() {
            self.say("restarting on the data it wrote");
            let mut args = vec!["restart"];
            args.extend(live.iter().map(String::as_str));
            let out = self.c.call(&args, Duration::from_secs(300), true)?;
            if !out.ok {
                self.say(&format!("restart: {}", out.message()));
            }
            self.ready(Phase::Restart)?;
            self.snapshot()?;
        }
        self.graceful_stop()
    }

    /// Wait until every live service is ready or has failed. After the first start a
    /// failure to come up healthy is a `ready` failure, and an exit a `first-start` one.
    fn ready(&mut self, during: Phase) -> Result<(), String> {
        let t = Instant::now();
        let mut pending = self.live();
        let mut since: HashMap<String, Instant> = HashMap::new();
        let mut base: HashMap<String, u64> = HashMap::new();
        while !pending.is_empty() {
            if self.opts.stop.load(Ordering::SeqCst) {
                return Err("interrupted".into());
            }
            let seen = self.c.observe()?;
            let mut done = Vec::new();
            for svc in &pending {
                let spec = &self.model["services"][svc];
                let budget = model::health_budget(spec, self.opts.ready_floor);
                let c = seen.get(svc);
                let first = *base
                    .entry(svc.clone())
                    .or_insert(c.map_or(0, |c| c.restarts));
                let verdict = super::state::judge(
                    c,
                    first,
                    t.elapsed(),
                    since.get(svc).map(Instant::elapsed),
                    budget,
                    self.opts.settle,
                );
                match verdict {
                    super::state::Ready::Wait { running } => {
                        if running {
                            since.entry(svc.clone()).or_insert_with(Instant::now);
                        }
                    }
                    super::state::Ready::Ok(detail) => {
                        let phase = if during == Phase::FirstStart {
                            Phase::Ready
                        } else {
                            Phase::Restart
                        };
                        let r = PhaseResult::new(phase, true, t.elapsed().as_secs_f64(), detail);
                        done.push((svc.clone(), r));
                    }
                    super::state::Ready::Failed { exited, detail } => {
                        let phase = match during {
                            Phase::FirstStart if exited => Phase::FirstStart,
                            Phase::FirstStart => Phase::Ready,
                            p => p,
                        };
                        // A first start that then exits counts from the start.
                        let secs = t.elapsed().as_secs_f64()
                            + if phase == Phase::FirstStart {
                                self.up_seconds
                            } else {
                                0.0
                            };
                        let r = PhaseResult::new(phase, false, secs, detail);
                        done.push((svc.clone(), r));
                    }
                }
            }
            for (svc, r) in done {
                pending.retain(|s| *s != svc);
                if r.ok {
                    self.say(&format!("{svc}: {} ({:.1} s)", r.detail, r.seconds));
                }
                self.record(&svc, r);
            }
            if !pending.is_empty() {
                std::thread::sleep(Duration::from_millis(400));
            }
        }
        Ok(())
    }

    /// Read the processes of every live service.
    fn snapshot(&mut self) -> Result<(), String> {
        let seen = self.c.observe()?;
        for svc in self.live() {
            if let Some(c) = seen.get(&svc) {
                let ps = self.c.processes(c);
                if let Some(run) = self.runs.get_mut(&svc) {
                    run.processes = ps;
                    run.restarts = c.restarts;
                }
            }
        }
        Ok(())
    }

    fn graceful_stop(&mut self) -> Result<(), String> {
        let live = self.live();
        if live.is_empty() {
            return Ok(());
        }
        self.say("stopping");
        let began = SystemTime::now();
        let t = Instant::now();
        let mut args = vec!["stop"];
        args.extend(live.iter().map(String::as_str));
        let out = self.c.call(&args, Duration::from_secs(600), true)?;
        let total = t.elapsed().as_secs_f64();
        let seen = self.c.observe()?;
        for svc in live {
            let grace = model::grace(&self.model["services"][&svc]);
            let r = match seen.get(&svc) {
                None => PhaseResult::new(Phase::Stop, false, total, "no container".into()),
                Some(c) => {
                    if let Some(run) = self.runs.get_mut(&svc) {
                        run.exit_code = Some(c.exit_code);
                        run.restarts = c.restarts;
                    }
                    let secs = c.stopped_after(began).unwrap_or(total);
                    super::state::judge_stop(c, secs, grace, (!out.ok).then(|| out.message()))
                }
            };
            self.record(&svc, r);
        }
        Ok(())
    }
}

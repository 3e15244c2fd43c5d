//! The Docker client: every call shells out to the `docker` CLI (`docker compose …`,
//! `docker inspect`, `docker top`) with a timeout, in its own process group (a Ctrl-C on
//! the terminal reaches us, not a half-done `docker compose`; we stop it ourselves).

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Most bytes kept of one stream of one call.
const MAX_OUTPUT: usize = 8 << 20;

/// How to start an engine, printed when none answers.
pub const HOW_TO_START: &str = "start Docker (`sudo systemctl start docker`, or `dockerd` by hand) \
or point DOCKER_HOST at a running engine (Podman: `systemctl --user start podman.socket` and \
DOCKER_HOST=unix://$XDG_RUNTIME_DIR/podman/podman.sock)";

/// A reachable engine and the versions it reported.
#[derive(Debug, Clone)]
pub struct Engine {
    /// Environment given to every call (DOCKER_HOST when we found a Podman socket).
    env: Vec<(String, String)>,
    /// `docker version`'s server version.
    pub server: String,
    /// `docker compose version --short`.
    pub compose: String,
    /// The daemon runs with userns-remap: host uids are shifted.
    pub userns_remap: bool,
}

/// What one call gave.
#[derive(Debug, Clone)]
pub struct Output {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// Standard output as bytes (`docker cp … -` writes a tar stream).
    pub raw: Vec<u8>,
}

impl Output {
    /// The last non-empty line of stderr (or stdout): the message worth showing.
    pub fn message(&self) -> String {
        let pick = |s: &str| {
            s.lines()
                .rev()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map(str::to_string)
        };
        pick(&self.stderr)
            .or_else(|| pick(&self.stdout))
            .unwrap_or_else(|| format!("exit status {:?}", self.code))
    }
}

/// Why a call did not give an [`Output`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The `docker` CLI could not be started.
    Spawn(String),
    TimedOut(Duration),
    /// The stop flag was raised (Ctrl-C): the call was killed.
    Interrupted,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Spawn(e) => write!(f, "cannot run the docker CLI: {e}"),
            CallError::TimedOut(d) => write!(f, "timed out after {} s", d.as_secs()),
            CallError::Interrupted => write!(f, "interrupted"),
        }
    }
}

/// Where a Podman socket may be when neither DOCKER_HOST nor Docker's socket is there.
fn podman_socket() -> Option<String> {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
        candidates.push(Path::new(&dir).join("podman/podman.sock"));
    }
    candidates.push("/run/podman/podman.sock".into());
    candidates
        .into_iter()
        .find(|p| p.exists())
        .map(|p| format!("unix://{}", p.display()))
}

impl Engine {
    /// Find the engine: DOCKER_HOST, else the docker context (the CLI's own choice), else a
    /// Podman socket; ask it for its version. The error says how to start one.
    pub fn connect() -> Result<Engine, String> {
        let mut env = Vec::new();
        let plain = std::env::var_os("DOCKER_HOST").is_none()
            && std::env::var_os("DOCKER_CONTEXT").is_none()
            && !Path::new("/var/run/docker.sock").exists();
        if plain && let Some(sock) = podman_socket() {
            env.push(("DOCKER_HOST".to_string(), sock));
        }
        let mut engine = Engine {
            env,
            server: String::new(),
            compose: String::new(),
            userns_remap: false,
        };
        let v = engine
            .call(
                &["version", "--format", "{{.Server.Version}}"],
                Duration::from_secs(20),
                None,
            )
            .map_err(|e| format!("no container engine reachable ({e}): {HOW_TO_START}"))?;
        if !v.ok || v.stdout.trim().is_empty() {
            return Err(format!(
                "no container engine reachable ({}): {HOW_TO_START}",
                v.message()
            ));
        }
        engine.server = v.stdout.trim().to_string();
        let c = engine
            .call(
                &["compose", "version", "--short"],
                Duration::from_secs(20),
                None,
            )
            .map_err(|e| e.to_string())?;
        if !c.ok {
            return Err(format!(
                "the engine answers but `docker compose` does not ({}): install the Compose v2 plugin",
                c.message()
            ));
        }
        engine.compose = c.stdout.trim().trim_start_matches('v').to_string();
        if let Ok(i) = engine.call(
            &["info", "--format", "{{json .SecurityOptions}}"],
            Duration::from_secs(20),
            None,
        ) {
            engine.userns_remap = i.stdout.contains("name=userns");
        }
        Ok(engine)
    }

    /// An engine value for tests that never call it.
    pub fn offline(server: &str, compose: &str) -> Engine {
        Engine {
            env: Vec::new(),
            server: server.into(),
            compose: compose.into(),
            userns_remap: false,
        }
    }

    /// Run `docker ARGS…`; kill it after `timeout`, or when `stop` is raised.
    pub fn call(
        &self,
        args: &[&str],
        timeout: Duration,
        stop: Option<&AtomicBool>,
    ) -> Result<Output, CallError> {
        let mut cmd = Command::new("docker");
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|e| CallError::Spawn(e.to_string()))?;
        let out = reader(child.stdout.take());
        let err = reader(child.stderr.take());
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Ok(s),
                Ok(None) => {}
                Err(e) => break Err(CallError::Spawn(e.to_string())),
            }
            let stopped = stop.is_some_and(|s| s.load(Ordering::SeqCst));
            if stopped || start.elapsed() >= timeout {
                let _ = child.kill();
                let _ = child.wait();
                break Err(if stopped {
                    CallError::Interrupted
                } else {
                    CallError::TimedOut(timeout)
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let raw = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        let status = status?;
        Ok(Output {
            ok: status.success(),
            code: status.code(),
            stdout: String::from_utf8_lossy(&raw).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            raw,
        })
    }
}

/// Read a child's stream on a thread, keeping at most [`MAX_OUTPUT`] bytes.
fn reader<R: Read + Send + 'static>(stream: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let Some(mut s) = stream else {
            return Vec::new();
        };
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            let room = MAX_OUTPUT.saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..n.min(room)]);
        }
        kept
    })
}

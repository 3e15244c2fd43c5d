//! Image inspection: what an image says about itself, with no container run. Its config
//! (User, Entrypoint, Cmd, Volumes …) and filesystem (from [`super::archive`]) become
//! evidence lines — the start scripts read by [`crate::evidence`], setuid files and file
//! capabilities on the start path, the owner of each VOLUME — and a profile with
//! confidence `inspected`, keyed by the image digest. From the engine, results are cached
//! by digest under `$XDG_CACHE_HOME/compose-harden/inspect/`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::archive::{self, Image, ImageConfig, Kind};
use crate::evidence::{self, Evidence, Finding, Proposal};
use crate::knowledge::{Class, Confidence, ImageRef, Profile};

pub const SCHEMA: &str = "compose-harden/inspect/1";
/// The analysis a cached inspection was made with: a cache entry from another is redone.
const ANALYSIS: &str = concat!(env!("CARGO_PKG_VERSION"), "+3");

/// Most scripts followed from the entrypoint.
const MAX_SCRIPTS: usize = 12;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Inspection {
    pub schema: String,
    pub analysis: String,
    /// The image name or archive path inspected.
    pub image: String,
    pub digest: String,
    pub tags: Vec<String>,
    pub config: ImageConfig,
    pub volumes: Vec<Volume>,
    /// Setuid or setgid regular files anywhere in the image.
    pub setuid: Vec<String>,
    pub file_caps: Vec<FileCaps>,
    /// The start scripts read, in the order they were followed.
    pub scripts: Vec<String>,
    pub evidence: Vec<Evidence>,
    pub proposal: Proposal,
    pub profile: Profile,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Volume {
    pub path: String,
    /// `None` when the image has no such path (Docker creates it owned by root, 0755).
    pub owner: Option<String>,
    pub mode: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileCaps {
    pub path: String,
    pub caps: Vec<String>,
    pub effective: bool,
}

/// Users and groups of the image (`etc/passwd`, `etc/group`).
struct Accounts {
    users: HashMap<String, (u64, u64)>,
    groups: HashMap<String, u64>,
}

impl Accounts {
    fn read(image: &Image) -> Accounts {
        let table = |path: &str| -> Vec<Vec<String>> {
            image.texts.get(path).map_or(Vec::new(), |t| {
                t.lines()
                    .map(|l| l.split(':').map(str::to_string).collect())
                    .collect()
            })
        };
        let mut users = HashMap::new();
        for f in table("etc/passwd") {
            if let (Some(n), Some(u), Some(g)) = (f.first(), f.get(2), f.get(3))
                && let (Ok(u), Ok(g)) = (u.parse(), g.parse())
            {
                users.insert(n.clone(), (u, g));
            }
        }
        let mut groups = HashMap::new();
        for f in table("etc/group") {
            if let (Some(n), Some(g)) = (f.first(), f.get(2).and_then(|g| g.parse().ok())) {
                groups.insert(n.clone(), g);
            }
        }
        Accounts { users, groups }
    }

    /// `name`, `uid`, `name:group` or `uid:gid` as numbers, when the image says.
    fn resolve(&self, spec: &str) -> Option<(u64, u64)> {
        let (u, g) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        let (uid, primary) = match u.parse::<u64>() {
            Ok(n) => (
                n,
                self.users.values().find(|(x, _)| *x == n).map(|(_, g)| *g),
            ),
            Err(_) => self.users.get(u).map(|&(x, g)| (x, Some(g)))?,
        };
        let gid = match g {
            Some(g) => g.parse().ok().or_else(|| self.groups.get(g).copied())?,
            None => primary.unwrap_or(uid),
        };
        Some((uid, gid))
    }
}

/// Inspect an image read from an archive; `name` is what the user gave.
pub fn analyse(image: &Image, name: &str) -> Inspection {
    let accounts = Accounts::read(image);
    let c = &image.config;
    let mut ev: Vec<Evidence> = Vec::new();
    let user = c.user.clone().filter(|u| !u.trim().is_empty());
    if let Some(u) = &user {
        ev.push(config_line(
            format!("User: {u}"),
            Finding::User { user: u.clone() },
        ));
    }
    let mut start: Vec<String> = c.entrypoint.clone().unwrap_or_default();
    let instruction = if start.is_empty() {
        "Cmd"
    } else {
        "Entrypoint"
    };
    start.extend(c.cmd.clone().unwrap_or_default());
    let shown = format!(
        "{instruction}: {}",
        serde_json::to_string(&start).unwrap_or_default()
    );
    ev.extend(evidence::read_start(
        "image config",
        0,
        &shown,
        instruction,
        start.clone(),
    ));
    if let Some(test) = c.healthcheck.as_ref().and_then(|h| h.test.clone()) {
        let shown = format!(
            "Healthcheck: {}",
            serde_json::to_string(&test).unwrap_or_default()
        );
        let words = match test.first().map(String::as_str) {
            Some("CMD-SHELL") => evidence::exec_form(test.get(1).map_or("", |s| s.as_str())),
            Some("CMD") => test[1..].to_vec(),
            _ => Vec::new(),
        };
        if !words.is_empty() {
            // What the healthcheck does, not its start line: the image starts otherwise.
            let found = evidence::read_start("image config", 0, &shown, "Healthcheck", words);
            ev.extend(
                found
                    .into_iter()
                    .filter(|e| !matches!(e.finding, Finding::Start { .. })),
            );
        }
    }
    let (scripts, mut programs) = follow_scripts(image, &start, &mut ev);
    // A wrapper runs its arguments (`lab-serve /usr/local/lib/lab/httpd`).
    programs.extend(start.iter().cloned());
    let step_tools = [
        "su", "runuser", "gosu", "su-exec", "setpriv", "chroot", "chpst",
    ];
    let runs_as_root = user.as_deref().is_none_or(evidence::is_root);
    let named: BTreeSet<&str> = programs
        .iter()
        .map(|p| base(p))
        .filter(|p| !(runs_as_root && step_tools.contains(p)))
        .collect();
    let mut setuid = Vec::new();
    let mut file_caps = Vec::new();
    for (path, node) in &image.files {
        if node.kind == Kind::File && node.mode & 0o6000 != 0 {
            setuid.push(format!("/{path}"));
            if named.contains(base(path)) {
                let text = format!(
                    "{:04o} {}:{} /{path}",
                    node.mode & 0o7777,
                    node.uid,
                    node.gid
                );
                ev.push(layer_line(
                    text,
                    Finding::SetuidBit {
                        paths: vec![format!("/{path}")],
                    },
                ));
            }
        }
        if let Some((caps, effective)) = node
            .file_caps
            .as_deref()
            .and_then(archive::decode_file_caps)
        {
            if named.contains(base(path)) {
                let text = format!("security.capability {} /{path}", caps.join(","));
                let finding = Finding::Setcap {
                    caps: caps.clone(),
                    paths: vec![format!("/{path}")],
                };
                ev.push(layer_line(text, finding));
            }
            file_caps.push(FileCaps {
                path: format!("/{path}"),
                caps,
                effective,
            });
        }
    }
    let volumes = volumes(image, c);
    let mut proposal = evidence::propose(&ev);
    if matches!(
        proposal.confidence,
        Confidence::FromSource | Confidence::Inferred
    ) {
        proposal.confidence = Confidence::Inspected;
    }
    let profile = profile(image, name, &proposal, &accounts, &volumes);
    Inspection {
        schema: SCHEMA.into(),
        analysis: ANALYSIS.into(),
        image: name.to_string(),
        digest: image.digest.clone(),
        tags: image.tags.clone(),
        config: c.clone(),
        volumes,
        setuid,
        file_caps,
        scripts,
        evidence: ev,
        proposal,
        profile,
    }
}

fn base(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

fn config_line(text: String, finding: Finding) -> Evidence {
    Evidence {
        file: "image config".into(),
        line: 0,
        text,
        finding,
    }
}

fn layer_line(text: String, finding: Finding) -> Evidence {
    Evidence {
        file: "image layers".into(),
        line: 0,
        text,
        finding,
    }
}

/// Read the start scripts: the entrypoint (or command) when it is a script, and the
/// scripts it runs, breadth first. Returns the scripts read and every program named.
fn follow_scripts(
    image: &Image,
    start: &[String],
    ev: &mut Vec<Evidence>,
) -> (Vec<String>, Vec<String>) {
    let c = &image.config;
    let path_var = c
        .env
        .iter()
        .flatten()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .to_string();
    let workdir = c.working_dir.clone().unwrap_or_default();
    let mut queue: Vec<String> = start.iter().take(1).cloned().collect();
    // `sh -c "…"`: what the string runs.
    if start.len() > 2
        && matches!(base(&start[0]), "sh" | "bash" | "ash" | "dash")
        && start[1] == "-c"
    {
        queue.extend(evidence::programs(&start[2]));
    }
    let (mut read, mut programs) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < queue.len() && read.len() < MAX_SCRIPTS {
        let word = queue[i].clone();
        i += 1;
        programs.push(word.clone());
        let Some(path) = locate(image, &word, &path_var, &workdir) else {
            continue;
        };
        let Some(text) = image.texts.get(&path) else {
            continue;
        };
        if read.contains(&format!("/{path}")) {
            continue;
        }
        read.push(format!("/{path}"));
        ev.extend(evidence::read_script(&format!("/{path}"), text));
        for p in evidence::programs(text) {
            if !queue.contains(&p) {
                queue.push(p);
            }
        }
    }
    programs.extend(queue);
    (read, programs)
}

/// The image path (no leading `/`) a command word runs, through PATH and symlinks.
fn locate(image: &Image, word: &str, path_var: &str, workdir: &str) -> Option<String> {
    if word.is_empty() || word.contains('$') {
        return None;
    }
    let candidates: Vec<String> = if word.starts_with('/') {
        vec![word.to_string()]
    } else if word.contains('/') {
        vec![format!("{workdir}/{word}")]
    } else {
        path_var.split(':').map(|d| format!("{d}/{word}")).collect()
    };
    candidates.into_iter().find_map(|c| follow(image, &c))
}

fn follow(image: &Image, path: &str) -> Option<String> {
    let mut cur = normalise(path);
    for _ in 0..16 {
        match &image.files.get(&cur)?.kind {
            Kind::Symlink(target) => {
                let dir = cur.rsplit_once('/').map_or("", |(d, _)| d);
                cur = if target.starts_with('/') {
                    normalise(target)
                } else {
                    normalise(&format!("{dir}/{target}"))
                };
            }
            Kind::File => return Some(cur),
            _ => return None,
        }
    }
    None
}

fn normalise(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for s in p.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

fn volumes(image: &Image, c: &ImageConfig) -> Vec<Volume> {
    c.volumes
        .iter()
        .flat_map(|v| v.keys())
        .map(|p| {
            let node = follow_dir(image, p);
            Volume {
                path: p.clone(),
                owner: node.map(|n| format!("{}:{}", n.uid, n.gid)),
                mode: node.map(|n| format!("{:04o}", n.mode & 0o7777)),
            }
        })
        .collect()
}

fn follow_dir<'i>(image: &'i Image, p: &str) -> Option<&'i archive::Node> {
    image.files.get(&normalise(p))
}

fn profile(
    image: &Image,
    name: &str,
    p: &Proposal,
    accounts: &Accounts,
    volumes: &[Volume],
) -> Profile {
    let reference = image
        .tags
        .first()
        .and_then(|t| ImageRef::parse(t))
        .filter(|r| r.tag.is_some())
        .or_else(|| ImageRef::parse(name).filter(|_| !Path::new(name).exists()));
    let (repos, tags) = match &reference {
        Some(r) => (
            vec![r.repo.clone()],
            r.tag.iter().cloned().collect::<Vec<_>>(),
        ),
        None => (vec![name.to_string()], Vec::new()),
    };
    let mut row = p.to_profile(
        repos,
        tags.clone(),
        Some(image.digest.clone()),
        vec![format!("inspected {name} ({})", image.digest)],
    );
    row.tags = tags;
    let run_as = match p.class {
        Class::NonRoot => Some(p.image_user.as_str()),
        Class::RootThenDrop => p.steps_down_to.as_deref(),
        _ => None,
    };
    row.user = run_as
        .and_then(|u| accounts.resolve(u))
        .filter(|(u, _)| *u > 0)
        .map(|(u, g)| format!("{u}:{g}"));
    row.low_ports = image
        .config
        .exposed_ports
        .iter()
        .flat_map(|m| m.keys())
        .filter_map(|p| p.split('/').next()?.parse::<u16>().ok())
        .filter(|p| *p < 1024)
        .collect();
    let mut notes: Vec<String> = p.cannot_tell.iter().cloned().collect();
    for v in volumes {
        notes.push(match (&v.owner, &v.mode) {
            (Some(o), Some(m)) => format!("VOLUME {} is {o} {m} in the image", v.path),
            _ => format!(
                "VOLUME {} is not in the image (created as root 0755)",
                v.path
            ),
        });
    }
    row.notes = (!notes.is_empty()).then(|| notes.join("; "));
    row
}

/// The inspection of an archive at `path`.
pub fn inspect_archive(path: &Path) -> Result<Inspection, String> {
    let image = archive::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(analyse(&image, &path.display().to_string()))
}

/// The `docker` command, with the environment's DOCKER_HOST.
fn docker() -> Command {
    let mut c = Command::new("docker");
    c.stdin(Stdio::null());
    c
}

/// The engine's ID (config digest) for `image`, or why it cannot be had.
pub fn engine_digest(image: &str) -> Result<String, String> {
    let out = docker()
        .args(["image", "inspect", "--format", "{{.Id}}", "--", image])
        .output()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("docker image inspect {image}: {}", err.trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Whether an engine answers.
pub fn engine_reachable() -> bool {
    docker()
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Where inspections are cached: `$XDG_CACHE_HOME/compose-harden/inspect` (or `~/.cache/…`).
pub fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("compose-harden").join("inspect"))
}

fn cache_file(digest: &str) -> Option<PathBuf> {
    let hex = digest.strip_prefix("sha256:")?;
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(cache_dir()?.join(format!("{hex}.json")))
}

/// Inspect `image` through the engine (`docker save`, streamed), or from the cache when
/// this digest was inspected before. The bool says whether it came from the cache.
pub fn inspect_engine(image: &str) -> Result<(Inspection, bool), String> {
    let digest = engine_digest(image)?;
    let cached = cache_file(&digest);
    if let Some(text) = cached.as_ref().and_then(|f| std::fs::read(f).ok())
        && let Ok(mut i) = serde_json::from_slice::<Inspection>(&text)
        && i.schema == SCHEMA
        && i.analysis == ANALYSIS
        && i.digest == digest
    {
        i.image = image.to_string();
        return Ok((i, true));
    }
    let mut child = docker()
        .args(["save", "--", image])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    let stdout = child.stdout.take().expect("piped");
    let read = archive::read_stream(stdout);
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("docker save {image}: {}", err.trim()));
    }
    let img = read.map_err(|e| format!("docker save {image}: {e}"))?;
    let inspection = analyse(&img, image);
    if let Some(f) = cached {
        let _ = std::fs::create_dir_all(f.parent().unwrap_or(Path::new(".")));
        if let Ok(json) = serde_json::to_vec(&inspection) {
            let tmp = f.with_extension("tmp");
            if std::fs::write(&tmp, json).is_ok() {
                let _ = std::fs::rename(&tmp, &f);
            }
        }
    }
    Ok((inspection, false))
}

#[cfg(test)]
#[path = "inspect_tests.rs"]
mod tests;

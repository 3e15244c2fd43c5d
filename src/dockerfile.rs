//! Reading the Dockerfile of a `build:` service: which image its final stage starts from,
//! which `USER` it ends with, and whether an entrypoint script copied into it steps down
//! from root (gosu, su-exec, setpriv, chown).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::document::Document;
use crate::knowledge::ImageRef;
use crate::yaml::NodeId;

/// What the build tells us.
#[derive(Debug, Clone, Serialize)]
pub struct BuildFacts {
    /// The Dockerfile as shown to users (`app/Dockerfile`, `dockerfile_inline`).
    pub dockerfile: String,
    /// Why the Dockerfile could not be read, if it could not.
    pub unreadable: Option<String>,
    /// The image the final stage is built from, through earlier stages.
    pub base: Option<ImageRef>,
    /// The last `USER` of the final stage (through earlier stages it is built from).
    pub user: Option<String>,
    /// A script copied into the image that changes user or ownership at start.
    pub drops_privileges: Option<String>,
    /// A RUN line that gives a non-root user a way to gain privileges (setcap, sudo, a
    /// setuid bit): with it, a non-root `USER` is no evidence that no capability is used.
    pub gains_privileges: Option<String>,
}

impl BuildFacts {
    pub fn label(&self) -> String {
        match (&self.base, &self.unreadable) {
            (_, Some(_)) => format!("build from {}", self.dockerfile),
            (Some(b), None) => format!("build from {} (FROM {})", self.dockerfile, b.display()),
            (None, None) => format!("build from {} (base unknown)", self.dockerfile),
        }
    }
}

/// Largest Dockerfile or script we read.
const MAX_READ: u64 = 1 << 20;

/// Inspect the `build:` value `build` of a compose file in directory `dir`.
pub fn inspect(
    doc: &Document,
    build: NodeId,
    dir: Option<&Path>,
    settings: &crate::facts::Settings,
) -> BuildFacts {
    let tree = &doc.tree;
    let build = tree.resolve(build);
    let get = |k: &str| {
        tree.lookup(build, k)
            .and_then(|(_, v, _)| tree.scalar(v).map(str::to_string))
    };
    let (context, dockerfile, inline) = if let Some(s) = tree.scalar(build) {
        (s.to_string(), None, None)
    } else {
        (
            get("context").unwrap_or_else(|| ".".into()),
            get("dockerfile"),
            get("dockerfile_inline"),
        )
    };
    let mut args: HashMap<String, String> = HashMap::new();
    if let Some((_, a, _)) = tree.lookup(build, "args") {
        let a = tree.resolve(a);
        for (k, v) in tree.entries(a) {
            if let (Some(k), Some(v)) = (tree.scalar(k), tree.scalar(v)) {
                args.insert(k.to_string(), v.to_string());
            }
        }
        for &i in tree.items(a) {
            if let Some((k, v)) = tree.scalar(i).and_then(|s| s.split_once('=')) {
                args.insert(k.to_string(), v.to_string());
            }
        }
    }
    let mut facts = BuildFacts {
        dockerfile: String::new(),
        unreadable: None,
        base: None,
        user: None,
        drops_privileges: None,
        gains_privileges: None,
    };
    let ctx_dir: Option<PathBuf> = match dir {
        Some(d)
            if !context.contains("://")
                && !context.starts_with("git@")
                && !context.contains('$') =>
        {
            Some(d.join(&context))
        }
        _ => None,
    };
    let text = if let Some(inline) = inline {
        facts.dockerfile = "dockerfile_inline".into();
        inline
    } else {
        let name = dockerfile.unwrap_or_else(|| "Dockerfile".into());
        let shown = Path::new(&context)
            .join(&name)
            .display()
            .to_string()
            .replace('\\', "/");
        facts.dockerfile = shown
            .strip_prefix("./")
            .map(str::to_string)
            .unwrap_or(shown);
        let Some(ctx) = &ctx_dir else {
            facts.unreadable = Some("the build context is not a local directory".into());
            return facts;
        };
        match read_small(&ctx.join(&name), settings) {
            Ok(t) => t,
            Err(e) => {
                facts.unreadable = Some(format!("{}: {e}", facts.dockerfile));
                return facts;
            }
        }
    };
    let parsed = parse(&text, &args);
    facts.base = parsed.base.as_deref().and_then(ImageRef::parse);
    if parsed.base.is_some() && facts.base.is_none() {
        facts.unreadable = Some("its final FROM names an image through an unset variable".into());
    }
    facts.user = parsed.user;
    facts.gains_privileges = parsed.gains;
    if let Some(ctx) = &ctx_dir {
        for script in &parsed.scripts {
            if let Ok(body) = read_small(&ctx.join(script), settings)
                && drops_privileges(&body)
            {
                facts.drops_privileges = Some(script.clone());
                break;
            }
        }
    }
    if facts.drops_privileges.is_none() && parsed.inline_drop {
        facts.drops_privileges = Some("a RUN/ENTRYPOINT line".into());
    }
    facts
}

/// Read a build file: at most [`MAX_READ`] bytes, inside the project root unless
/// `--allow-outside` (a `context: ../..` or a symlink must not disclose other files).
fn read_small(path: &Path, settings: &crate::facts::Settings) -> Result<String, String> {
    if let (Some(root), false) = (&settings.root, settings.allow_outside) {
        crate::project::inside(path, root).map_err(|e| match e.as_str() {
            "no such file or directory" => "not found".to_string(),
            _ => e,
        })?;
    }
    crate::fsread::read_text(path, MAX_READ).map_err(|e| match e {
        crate::fsread::ReadError::NotFound => "not found".into(),
        e => e.message(),
    })
}

/// Whether a start script switches user or ownership (and so needs capabilities as root).
/// The reading itself is the evidence reader's ([`crate::evidence`]).
pub fn drops_privileges(script: &str) -> bool {
    crate::evidence::read_script("", script)
        .iter()
        .any(|e| e.finding.drops_privileges())
}

#[derive(Debug, Default)]
struct Parsed {
    base: Option<String>,
    user: Option<String>,
    scripts: Vec<String>,
    inline_drop: bool,
    gains: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct Stage {
    name: Option<String>,
    base: Option<String>,
    user: Option<String>,
    scripts: Vec<String>,
    inline_drop: bool,
    gains: Option<String>,
}

/// Whether a RUN line installs a way for a non-root user to gain privileges: a file
/// capability (`setcap`), sudo, or a setuid/setgid bit (`chmod u+s`, `chmod 4755`).
pub fn gains_privileges(run: &str) -> bool {
    let words: Vec<&str> = run
        .split(|c: char| c.is_whitespace() || c == ';' || c == '&' || c == '|')
        .filter(|w| !w.is_empty())
        .collect();
    words.iter().enumerate().any(|(i, w)| {
        let w = w.rsplit('/').next().unwrap_or(w);
        match w {
            "setcap" | "sudo" | "doas" | "fixuid" => true,
            "chmod" => words[i + 1..].iter().take(4).any(|m| {
                let m = m.trim_start_matches('-');
                (m.contains("+s") || m.contains("=s"))
                    || (m.len() == 4
                        && m.chars().all(|c| c.is_ascii_digit())
                        && matches!(m.as_bytes()[0], b'2' | b'4' | b'6'))
            }),
            _ => false,
        }
    })
}

/// Logical lines: continuations joined, comments and blank lines dropped.
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for raw in text.lines() {
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') {
            continue;
        }
        if let Some(body) = line.trim_end().strip_suffix('\\') {
            cur.push_str(body);
            cur.push(' ');
            continue;
        }
        cur.push_str(line);
        if !cur.trim().is_empty() {
            out.push(cur.trim().to_string());
        }
        cur.clear();
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

fn substitute(s: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, default, len) = if let Some(body) = after.strip_prefix('{') {
            match body.find('}') {
                Some(end) => {
                    let inner = &body[..end];
                    let (n, d) = match inner.split_once(":-").or_else(|| inner.split_once('-')) {
                        Some((n, d)) => (n, Some(d)),
                        None => (inner, None),
                    };
                    (n.to_string(), d.map(str::to_string), end + 2)
                }
                None => break,
            }
        } else {
            let n: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let l = n.len();
            (n, None, l)
        };
        match vars
            .get(&name)
            .filter(|v| !v.is_empty())
            .cloned()
            .or(default)
        {
            Some(v) => out.push_str(&v),
            None => {
                out.push('$');
                out.push_str(&after[..len]);
            }
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

fn parse(text: &str, build_args: &HashMap<String, String>) -> Parsed {
    let mut vars: HashMap<String, String> = HashMap::new();
    let mut stages: Vec<Stage> = Vec::new();
    for line in logical_lines(text) {
        let (instr, rest) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let rest = rest.trim();
        match instr.to_ascii_uppercase().as_str() {
            "ARG" => {
                for decl in rest.split_whitespace() {
                    let (k, v) = decl.split_once('=').unwrap_or((decl, ""));
                    let v = build_args
                        .get(k)
                        .cloned()
                        .unwrap_or_else(|| v.trim_matches('"').to_string());
                    vars.entry(k.to_string()).or_insert(v);
                }
            }
            "FROM" => {
                let words: Vec<&str> = rest
                    .split_whitespace()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                let image = words.first().map(|w| substitute(w, &vars));
                let name = match words.as_slice() {
                    [_, as_, n, ..] if as_.eq_ignore_ascii_case("as") => {
                        Some(n.to_ascii_lowercase())
                    }
                    _ => None,
                };
                // A stage built FROM an earlier stage inherits its base and user.
                let parent = image.as_ref().and_then(|i| {
                    stages
                        .iter()
                        .rev()
                        .find(|s| s.name.as_deref() == Some(&i.to_ascii_lowercase()))
                        .cloned()
                });
                stages.push(match parent {
                    Some(p) => Stage { name, ..p },
                    None => Stage {
                        name,
                        base: image,
                        ..Stage::default()
                    },
                });
            }
            "USER" => {
                if let Some(s) = stages.last_mut() {
                    s.user = Some(substitute(rest, &vars));
                }
            }
            "COPY" | "ADD" => {
                if let Some(s) = stages.last_mut() {
                    let words: Vec<&str> = rest
                        .split_whitespace()
                        .filter(|w| !w.starts_with("--"))
                        .collect();
                    if words.iter().any(|w| w.starts_with("--from")) || rest.contains("--from") {
                        continue;
                    }
                    if let Some((_, srcs)) = words.split_last() {
                        for src in srcs {
                            if src.ends_with(".sh") || src.contains("entrypoint") {
                                s.scripts.push(src.trim_matches('"').to_string());
                            }
                        }
                    }
                }
            }
            "RUN" => {
                if let Some(s) = stages.last_mut()
                    && s.gains.is_none()
                    && gains_privileges(rest)
                {
                    s.gains = Some(format!("RUN {}", truncate(rest, 60)));
                }
            }
            "ENTRYPOINT" | "CMD" => {
                if let Some(s) = stages.last_mut()
                    && drops_privileges(&rest.replace(['"', '[', ']', ','], " "))
                {
                    s.inline_drop = true;
                }
            }
            _ => {}
        }
    }
    let last = stages.pop().unwrap_or_default();
    Parsed {
        base: last.base,
        user: last.user,
        scripts: last.scripts,
        inline_drop: last.inline_drop,
        gains: last.gains,
    }
}

fn truncate(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_stage_base_and_user_through_stages_and_args() {
        let text = "ARG NODE=22\nFROM node:${NODE}-alpine AS base\nUSER node\n\
                    FROM golang:1.23 AS build\nRUN go build\n\
                    FROM base AS final\nCOPY docker-entrypoint.sh /usr/local/bin/\n";
        let p = parse(text, &HashMap::new());
        assert_eq!(p.base.as_deref(), Some("node:22-alpine"));
        assert_eq!(p.user.as_deref(), Some("node"));
        assert_eq!(p.scripts, vec!["docker-entrypoint.sh"]);
    }

    #[test]
    fn build_args_override_arg_defaults() {
        let mut args = HashMap::new();
        args.insert("BASE".to_string(), "postgres:16".to_string());
        let p = parse("ARG BASE=alpine\nFROM $BASE\n", &args);
        assert_eq!(p.base.as_deref(), Some("postgres:16"));
    }

    #[test]
    fn recognises_ways_to_gain_privileges() {
        let p = parse(
            "FROM debian:12\nRUN apt-get install -y iputils && setcap cap_net_raw+eip /bin/ping\nUSER app\n",
            &HashMap::new(),
        );
        assert!(p.gains.is_some_and(|g| g.contains("setcap")));
        assert!(gains_privileges("apt-get install -y sudo"));
        assert!(gains_privileges("chmod u+s /usr/bin/tool"));
        assert!(gains_privileges("chmod 4755 /usr/bin/tool"));
        assert!(!gains_privileges("chmod 755 /app && chown app /app"));
        let p = parse("FROM node:22\nRUN npm ci\nUSER node\n", &HashMap::new());
        assert!(p.gains.is_none());
    }

    #[test]
    fn recognises_privilege_drop() {
        assert!(drops_privileges(
            "#!/bin/sh\nchown -R app /data\nexec su-exec app \"$@\"\n"
        ));
        assert!(!drops_privileges(
            "#!/bin/sh\n# gosu is not used\nexec \"$@\"\n"
        ));
    }
}

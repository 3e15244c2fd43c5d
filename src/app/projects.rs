//! Which files of a walk Compose runs together: the `-f` files as one project; the files a
//! directory's `.env` names in `COMPOSE_FILE`; the file sets a configuration names
//! (`[[project]] files = [...]`); else a base file with its `compose.override.yaml` and the
//! `compose.*.yaml` overlays beside it. The rest alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::{self, Config};
use crate::env::Env;

/// Base files that Compose merges a same-directory override file into.
pub(super) const BASES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// The file names `COMPOSE_FILE` gives for the project in `dir`, in order.
pub(super) fn compose_file(dir: &Path) -> Vec<PathBuf> {
    let env = Env::load(dir);
    let Some(list) = env.get("COMPOSE_FILE") else {
        return Vec::new();
    };
    let sep = env
        .get("COMPOSE_PATH_SEPARATOR")
        .filter(|s| !s.is_empty())
        .unwrap_or(if cfg!(windows) { ";" } else { ":" });
    list.split(sep)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| normal(&dir.join(s)))
        .collect()
}

/// `a/./b` → `a/b`, so that names from `.env` or a config compare with walked paths.
pub(super) fn normal(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

/// The file sets named by the configuration governing `dir`, as paths.
fn configured_sets(dir: &Path) -> Vec<Vec<PathBuf>> {
    let Some(path) = config::find(dir) else {
        return Vec::new();
    };
    let Ok(c) = Config::load(&path) else {
        return Vec::new();
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let canon_dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    c.project
        .iter()
        .map(|p| {
            p.files
                .iter()
                .map(|f| {
                    // Config paths are relative to the config; walked paths to the walk.
                    let full = base.join(f);
                    match full.strip_prefix(&canon_dir) {
                        Ok(rel) => normal(&dir.join(rel)),
                        Err(_) => normal(&full),
                    }
                })
                .collect()
        })
        .collect()
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
}

fn is_overlay(name: &str) -> bool {
    !BASES.contains(&name)
        && (name.starts_with("compose.") || name.starts_with("docker-compose."))
        && (name.ends_with(".yaml") || name.ends_with(".yml"))
}

/// Group the inputs with paths `paths` (`None`: standard input, or a file that failed to
/// load; `project`: named with `-f`).
pub(super) fn group(paths: &[(Option<PathBuf>, bool)]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut taken: Vec<bool> = paths.iter().map(|(_, project)| *project).collect();
    let mut by_dir: BTreeMap<PathBuf, Vec<usize>> = BTreeMap::new();
    for (i, (p, project)) in paths.iter().enumerate() {
        if let (Some(p), false) = (p, project) {
            let dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
            by_dir.entry(dir).or_default().push(i);
        }
    }
    let find = |want: &Path, taken: &[bool]| {
        paths.iter().enumerate().position(|(i, (p, _))| {
            !taken[i] && p.as_deref().is_some_and(|p| normal(p) == normal(want))
        })
    };
    for (dir, members) in &by_dir {
        let here = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let mut sets = configured_sets(here);
        sets.insert(0, compose_file(here));
        for set in sets {
            let mut g = Vec::new();
            for f in &set {
                if let Some(i) = find(f, &taken) {
                    taken[i] = true;
                    g.push(i);
                }
            }
            if !g.is_empty() {
                out.push(g);
            }
        }
        let free: Vec<usize> = members.iter().copied().filter(|&i| !taken[i]).collect();
        let name = |i: usize| paths[i].0.as_deref().map(name_of).unwrap_or_default();
        let Some(&base) = free.iter().find(|&&i| BASES.contains(&name(i).as_str())) else {
            continue;
        };
        let mut overlays: Vec<usize> = free
            .iter()
            .copied()
            .filter(|&i| is_overlay(&name(i)))
            .collect();
        if overlays.is_empty() {
            continue;
        }
        // The override file first (Compose merges it by default), then the others by name,
        // and the hardening overlay `fix --into` writes last: it applies on top of them all.
        overlays.sort_by_key(|&i| {
            let n = name(i);
            (!n.contains(".override."), n.contains(".hardening."), n)
        });
        taken[base] = true;
        let mut g = vec![base];
        for i in overlays {
            taken[i] = true;
            g.push(i);
        }
        out.push(g);
    }
    for (i, t) in taken.iter().enumerate() {
        if !t {
            out.push(vec![i]);
        }
    }
    let project: Vec<usize> = (0..paths.len()).filter(|&i| paths[i].1).collect();
    if !project.is_empty() {
        out.push(project);
    }
    out
}

//! Following `extends: {file: …, service: …}`: the base service in another file, read with
//! the limits every input has. Only regular files inside the project (the compose file's
//! directory, or the enclosing git work tree) are read; a device, a path outside it, a
//! loop or a chain deeper than [`MAX_DEPTH`] files is reported instead.
//!
//! Parsed base files are kept for the rest of the run (they are shared by every service
//! that extends them): at most [`MAX_FILES`] of them, each at most 1 MiB.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::document::{Document, Service};
use crate::yaml::Limits;

/// One definition of a service, in a file kept for the run.
pub type Def = (&'static Document, &'static Service);

const MAX_DEPTH: usize = 8;
const MAX_FILES: usize = 256;
const MAX_SIZE: u64 = 1 << 20;

/// What an `extends` mapping names: `(file, service)`; `None` when it names no file.
pub fn target(doc: &Document, value: crate::yaml::NodeId) -> Option<(String, Option<String>)> {
    let tree = &doc.tree;
    let v = tree.resolve(value);
    let get = |k: &str| {
        tree.lookup(v, k)
            .and_then(|(_, x, _)| tree.scalar(x).map(str::to_string))
    };
    get("file").map(|f| (f, get("service")))
}

/// The definitions of `service` in `file` (relative to `dir`), its own bases first.
/// `root` is the project boundary ([`crate::project`]; `None`: the enclosing git work tree
/// or `dir`), `allow_outside` lifts it (`--allow-outside`).
pub fn follow(
    dir: Option<&Path>,
    file: &str,
    service: &str,
    root: Option<&Path>,
    allow_outside: bool,
) -> Result<Vec<Def>, String> {
    let mut seen = Vec::new();
    let bound = Bound {
        root: root.map(Path::to_path_buf),
        allow_outside,
    };
    follow_at(dir, file, service, 0, &mut seen, &bound)
}

struct Bound {
    root: Option<PathBuf>,
    allow_outside: bool,
}

fn follow_at(
    dir: Option<&Path>,
    file: &str,
    service: &str,
    depth: usize,
    seen: &mut Vec<(PathBuf, String)>,
    bound: &Bound,
) -> Result<Vec<Def>, String> {
    if depth >= MAX_DEPTH {
        return Err(format!("extends goes deeper than {MAX_DEPTH} files"));
    }
    let Some(dir) = dir else {
        return Err("a file read from standard input cannot extend another file".into());
    };
    if file.contains('$') {
        return Err(format!("extends file {file} names a variable"));
    }
    let (path, doc) =
        load(&dir.join(file), dir, bound).map_err(|e| format!("extends file {file}: {e}"))?;
    if seen.contains(&(path.clone(), service.to_string())) {
        return Err(format!("extends loops through {file}"));
    }
    seen.push((path.clone(), service.to_string()));
    let Some(s) = doc.services.iter().find(|s| s.name == service) else {
        return Err(format!("extends file {file} has no service {service:?}"));
    };
    let here = path.parent().map(Path::to_path_buf);
    let mut out = Vec::new();
    if let Some((_, v, _)) = doc.tree.lookup(s.map, "extends") {
        match target(doc, v) {
            Some((f, svc)) => {
                let svc = svc.unwrap_or_else(|| service.to_string());
                out = follow_at(here.as_deref(), &f, &svc, depth + 1, seen, bound)?;
            }
            None => {
                let name = doc.tree.scalar(v).map(str::to_string).or_else(|| {
                    let m = doc.tree.resolve(v);
                    doc.tree
                        .lookup(m, "service")
                        .and_then(|(_, x, _)| doc.tree.scalar(x).map(str::to_string))
                });
                if let Some(n) = name.filter(|n| n != service) {
                    let file_name = path.file_name().map(|n| n.to_string_lossy().to_string());
                    out = follow_at(
                        here.as_deref(),
                        &file_name.unwrap_or_default(),
                        &n,
                        depth + 1,
                        seen,
                        bound,
                    )?;
                }
            }
        }
    }
    out.push((doc, s));
    Ok(out)
}

/// The project a compose file in `dir` belongs to: the enclosing git work tree, else `dir`.
fn project_root(dir: &Path) -> PathBuf {
    let start = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut cur = Some(start.as_path());
    while let Some(d) = cur {
        if d.join(".git").exists() {
            return d.to_path_buf();
        }
        cur = d.parent();
    }
    start
}

type Cache = HashMap<PathBuf, Result<&'static Document, String>>;

fn load(path: &Path, dir: &Path, bound: &Bound) -> Result<(PathBuf, &'static Document), String> {
    let meta = std::fs::metadata(path).map_err(|_| "not found; not read".to_string())?;
    if !meta.is_file() {
        return Err("not a regular file; not read".into());
    }
    if meta.len() > MAX_SIZE {
        return Err("over 1 MiB; not read".into());
    }
    let canon = std::fs::canonicalize(path).map_err(|e| e.to_string().to_lowercase())?;
    let root = bound.root.clone().unwrap_or_else(|| project_root(dir));
    if !bound.allow_outside && !canon.starts_with(root) {
        return Err(crate::project::OUTSIDE.into());
    }
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = map.get(&canon) {
        return r.clone().map(|d| (canon, d));
    }
    if map.len() >= MAX_FILES {
        return Err(format!("more than {MAX_FILES} extended files; not read"));
    }
    let r = std::fs::read_to_string(&canon)
        .map_err(|e| e.to_string().to_lowercase())
        .and_then(|t| Document::parse(t, Limits::default()).map_err(|e| e.message))
        .map(|d| &*Box::leak(Box::new(d)));
    map.insert(canon.clone(), r.clone());
    r.map(|d| (canon, d))
}

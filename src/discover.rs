//! Which files to look at: explicit files always; directories walked recursively for
//! compose file names, honouring .gitignore and skipping hidden folders.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};

/// The file names Compose itself looks for, and their override variants.
pub const COMPOSE_NAMES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
    "compose.*.yaml",
    "compose.*.yml",
    "docker-compose.*.yaml",
    "docker-compose.*.yml",
    "docker-compose-*.yaml",
    "docker-compose-*.yml",
    "compose-*.yaml",
    "compose-*.yml",
    "*.compose.yaml",
    "*.compose.yml",
];

fn names() -> GlobSet {
    let mut b = GlobSetBuilder::new();
    for n in COMPOSE_NAMES {
        b.add(Glob::new(n).expect("static glob"));
    }
    b.build().expect("static globs")
}

/// A path to process, or a problem found while walking.
pub enum Found {
    File(PathBuf),
    Error(PathBuf, String),
}

/// Expand `paths` into files, sorted and without duplicates. `include` replaces the
/// compose file names, `extend` adds to them.
pub fn discover(
    paths: &[PathBuf],
    include: &[String],
    extend: &[String],
    exclude: &[String],
) -> Result<Vec<Found>, String> {
    let names = names();
    let build = |pats: &[String]| -> Result<Option<GlobSet>, String> {
        if pats.is_empty() {
            return Ok(None);
        }
        let mut b = GlobSetBuilder::new();
        for p in pats {
            b.add(Glob::new(p).map_err(|e| format!("invalid glob {p:?}: {e}"))?);
        }
        b.build().map(Some).map_err(|e| e.to_string())
    };
    let include = build(include)?;
    let extend = build(extend)?;
    let exclude = build(exclude)?;
    let mut files: Vec<PathBuf> = Vec::new();
    let mut errors: Vec<(PathBuf, String)> = Vec::new();
    for root in paths {
        let meta = std::fs::metadata(root);
        let named_like_compose = root
            .file_name()
            .is_some_and(|n| names.is_match(Path::new(n)));
        match meta {
            // `compose.yaml/` given by name: the user meant a file.
            Ok(m) if m.is_dir() && named_like_compose => {
                errors.push((
                    root.clone(),
                    "is a directory, expected a compose file".into(),
                ));
            }
            Ok(m) if m.is_dir() => {
                let walker = ignore::WalkBuilder::new(root)
                    .require_git(false)
                    .sort_by_file_name(|a, b| a.cmp(b))
                    .build();
                for entry in walker {
                    let entry = match entry {
                        Ok(e) => e,
                        Err(e) => {
                            errors.push((root.clone(), e.to_string().to_lowercase()));
                            continue;
                        }
                    };
                    // Regular files, and symlinks (followed when read; a broken one is reported).
                    if !entry
                        .file_type()
                        .is_some_and(|t| t.is_file() || t.is_symlink())
                    {
                        continue;
                    }
                    if entry.path_is_symlink() && entry.path().is_dir() {
                        continue;
                    }
                    let path = entry.path();
                    let name = path.file_name().map(Path::new).unwrap_or(path);
                    let rel = path.strip_prefix(root).unwrap_or(path);
                    let named = match &include {
                        Some(inc) => inc.is_match(rel) || inc.is_match(name),
                        None => names.is_match(name),
                    } || extend
                        .as_ref()
                        .is_some_and(|x| x.is_match(rel) || x.is_match(name));
                    let excluded = exclude
                        .as_ref()
                        .is_some_and(|ex| ex.is_match(rel) || ex.is_match(name));
                    if named && !excluded {
                        files.push(path.to_path_buf());
                    }
                }
            }
            // Explicit files are always taken; reading them reports what is wrong.
            _ => files.push(root.clone()),
        }
    }
    files.sort();
    files.dedup();
    let mut out: Vec<Found> = files.into_iter().map(Found::File).collect();
    out.extend(errors.into_iter().map(|(p, e)| Found::Error(p, e)));
    Ok(out)
}

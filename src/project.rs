//! The project root: the boundary inside which compose-harden reads build contexts,
//! Dockerfiles and scripts, looks for `compose-harden.toml`, and writes fixes.
//!
//! It is the git work tree holding the compose file (the nearest directory upward with a
//! `.git`); outside git, the directory walked (the `PATH` argument the file was found
//! under), and for a file named explicitly, the current directory when the file lies
//! under it, else the file's own directory. `--allow-outside` lifts the boundary for
//! reads and writes (never for the configuration search).

use std::path::{Path, PathBuf};

/// The nearest directory at or above `dir` that holds `.git` (a directory, or a file for
/// worktrees and submodules).
pub fn git_root(dir: &Path) -> Option<PathBuf> {
    let start = std::fs::canonicalize(dir).ok()?;
    start
        .ancestors()
        .find(|d| std::fs::symlink_metadata(d.join(".git")).is_ok())
        .map(Path::to_path_buf)
}

/// The root of the project holding `file`, found under `walked` (the `PATH` argument that
/// named it or the directory walked to find it; `None` for `-f` files).
pub fn root_of(file: &Path, walked: Option<&Path>) -> Option<PathBuf> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if let Some(g) = git_root(&dir) {
        return Some(g);
    }
    let walked = walked.filter(|w| w.is_dir());
    let cwd = std::env::current_dir().ok();
    let dir = std::fs::canonicalize(&dir).ok()?;
    let base = match walked {
        Some(w) => std::fs::canonicalize(w).ok()?,
        None => cwd.and_then(|c| std::fs::canonicalize(c).ok())?,
    };
    Some(if dir.starts_with(&base) { base } else { dir })
}

/// `path` as it really is (symlinks resolved), when it lies inside `root`; otherwise why
/// not, in words that name the boundary and the flag that lifts it.
pub fn inside(path: &Path, root: &Path) -> Result<PathBuf, String> {
    let real = std::fs::canonicalize(path).map_err(|e| crate::fsread::lower(&e))?;
    if real.starts_with(root) {
        Ok(real)
    } else {
        Err(OUTSIDE.into())
    }
}

/// What a refused path is told.
pub const OUTSIDE: &str = "outside the project (its git work tree, or the directory walked); not read or written without --allow-outside";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_git_root_bounds_the_project() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        std::fs::create_dir_all(repo.join("a/b")).unwrap();
        std::fs::write(tmp.path().join("secret"), "x").unwrap();
        let root = root_of(&repo.join("a/b/compose.yaml"), None).unwrap();
        assert_eq!(root, std::fs::canonicalize(&repo).unwrap());
        assert!(inside(&repo.join("a/../a/b"), &root).is_ok());
        assert_eq!(
            inside(&repo.join("a/../../secret"), &root).unwrap_err(),
            OUTSIDE
        );
    }
}

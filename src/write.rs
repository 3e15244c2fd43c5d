//! Atomic in-place writes: a temporary file in the same directory, flushed to disk, then
//! renamed over the target. Permissions are kept, a symlink is written through to its
//! target, and a file that changed since we read it is not overwritten.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::source::Fingerprint;

/// Replace the contents of `path` with `new`, provided it still holds what it held when it
/// was read (`expected`).
pub fn replace(path: &Path, expected: Fingerprint, new: &[u8]) -> Result<(), String> {
    let target: PathBuf = fs::canonicalize(path)
        .map_err(|e| format!("cannot resolve {}: {}", path.display(), lower(&e)))?;
    let dir = target
        .parent()
        .ok_or_else(|| format!("{} has no parent directory", target.display()))?;
    let meta = fs::metadata(&target).map_err(|e| lower(&e))?;
    if meta.permissions().readonly() {
        return Err("the file is read-only; not written".into());
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".compose-harden-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| {
            format!(
                "cannot create a temporary file in {}: {}",
                dir.display(),
                lower(&e)
            )
        })?;
    tmp.write_all(new).map_err(|e| lower(&e))?;
    tmp.as_file()
        .set_permissions(meta.permissions())
        .map_err(|e| lower(&e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // Keep the owner where we may (root running over other users' files); ignore failure.
        let _ = std::os::unix::fs::fchown(tmp.as_file(), Some(meta.uid()), Some(meta.gid()));
    }
    tmp.as_file().sync_all().map_err(|e| lower(&e))?;
    let now = fs::read(&target).map_err(|e| lower(&e))?;
    if Fingerprint::of(&now) != expected {
        return Err("the file changed while it was being fixed; not written".into());
    }
    tmp.persist(&target)
        .map_err(|e| format!("cannot replace {}: {}", target.display(), lower(&e.error)))?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn lower(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s);
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_changed_since_it_was_read_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("compose.yaml");
        std::fs::write(&p, "changed by someone else\n").unwrap();
        let e = replace(&p, Fingerprint::of(b"what we read\n"), b"our fix\n").unwrap_err();
        assert!(e.contains("changed while it was being fixed"), "{e}");
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "changed by someone else\n"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }

    #[cfg(unix)]
    #[test]
    fn mode_is_kept_and_symlinks_are_written_through() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.yaml");
        std::fs::write(&target, "old\n").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("compose.yaml");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        replace(&link, Fingerprint::of(b"old\n"), b"new\n").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new\n");
        assert_eq!(
            std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
            0o640
        );
    }
}

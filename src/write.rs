//! Atomic in-place writes: a temporary file in the same directory, flushed to disk, then
//! renamed over the target. A symlink is written through to its target.
//!
//! What is kept: the owner (refused when it cannot be kept: run as another user, the
//! fixed file would change hands), every mode bit (setuid, setgid and sticky included),
//! and extended attributes (ACLs, labels, `user.*`; refused when one cannot be copied).
//! A file with several hard links is refused: a rename would split it from its other
//! names. A file that changed since it was read is not overwritten.
//!
//! The race with another writer: the contents are compared with what was read, and just
//! before the rename the file's identity (device, inode, size, modification time) is
//! compared with what it was when the write began. What remains: a write landing between
//! that last comparison and the rename (a few system calls), and a writer that keeps the
//! old file open and writes after the rename (its writes go to the replaced inode).
//!
//! Temporary files are named `.compose-harden-<pid>-<n>.tmp`. One left behind by a run
//! that was killed (its pid gone) is removed by the next run that writes in that
//! directory, which reports it ([`take_removed`]).

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::fsread::lower;
use crate::source::Fingerprint;

const PREFIX: &str = ".compose-harden-";
const SUFFIX: &str = ".tmp";

static COUNTER: AtomicU64 = AtomicU64::new(0);
/// Directories already swept for stale temporary files, and what was removed.
static SWEPT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static REMOVED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The stale temporary files removed so far (each reported once).
pub fn take_removed() -> Vec<PathBuf> {
    std::mem::take(&mut *REMOVED.lock().unwrap_or_else(|e| e.into_inner()))
}

/// What identifies a file's state: where it is and when it last changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
}

#[cfg(unix)]
fn identity(m: &fs::Metadata) -> Identity {
    use std::os::unix::fs::MetadataExt;
    Identity {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime: (m.mtime(), m.mtime_nsec()),
    }
}

#[cfg(not(unix))]
fn identity(m: &fs::Metadata) -> Identity {
    Identity {
        dev: 0,
        ino: 0,
        len: m.len(),
        mtime: m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or((0, 0), |d| (d.as_secs() as i64, d.subsec_nanos() as i64)),
    }
}

/// A temporary file that is removed unless it was renamed into place.
struct Temp {
    path: PathBuf,
    file: Option<fs::File>,
}

impl Drop for Temp {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A new temporary file in `dir` (`shown` as the user named it).
fn create_temp(dir: &Path, shown: &Path) -> Result<Temp, String> {
    sweep(dir);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{PREFIX}{}-{n}{SUFFIX}", std::process::id()));
        let mut o = fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        match o.open(&path) {
            Ok(file) => {
                return Ok(Temp {
                    path,
                    file: Some(file),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(format!(
                    "cannot create a temporary file in {}: {}",
                    shown.display(),
                    lower(&e)
                ));
            }
        }
    }
}

/// The pid in a temporary file name of ours.
fn pid_of(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let (pid, n) = rest.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

#[cfg(unix)]
fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only asks whether the process exists.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(unix))]
fn alive(_pid: u32) -> bool {
    true
}

/// Remove our temporary files in `dir` whose process is gone (once per directory).
fn sweep(dir: &Path) {
    {
        let mut swept = SWEPT.lock().unwrap_or_else(|e| e.into_inner());
        if swept.iter().any(|d| d == dir) {
            return;
        }
        swept.push(dir.to_path_buf());
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(pid_of) else {
            continue;
        };
        let regular = e.file_type().is_ok_and(|t| t.is_file());
        if regular && pid != std::process::id() && !alive(pid) && fs::remove_file(e.path()).is_ok()
        {
            REMOVED
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(e.path());
        }
    }
}

/// Replace the contents of `path` with `new`, provided it still holds what it held when it
/// was read (`expected`).
pub fn replace(path: &Path, expected: Fingerprint, new: &[u8]) -> Result<(), String> {
    let target: PathBuf = fs::canonicalize(path)
        .map_err(|e| format!("cannot resolve {}: {}", path.display(), lower(&e)))?;
    let dir = target
        .parent()
        .ok_or_else(|| format!("{} has no parent directory", path.display()))?;
    let original = fs::File::open(&target).map_err(|e| lower(&e))?;
    let meta = original.metadata().map_err(|e| lower(&e))?;
    if !meta.is_file() {
        return Err("not a regular file; not written".into());
    }
    if meta.permissions().readonly() {
        return Err("the file is read-only; not written".into());
    }
    links(&meta)?;
    let before = identity(&meta);
    unchanged(&target, expected)?;
    let shown = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = create_temp(dir, shown)?;
    let file = tmp.file.as_mut().expect("an open temporary file");
    file.write_all(new).map_err(|e| lower(&e))?;
    keep_owner_and_mode(file, &meta)?;
    copy_xattrs(&original, file)?;
    file.sync_all().map_err(|e| lower(&e))?;
    #[cfg(test)]
    tests::BEFORE_RENAME.with(|h| h.borrow().as_ref().map(|f| f(&target)));
    // The last look before the rename: the same file, untouched since the write began.
    unchanged(&target, expected)?;
    let now = fs::metadata(&target).map_err(|e| lower(&e))?;
    if identity(&now) != before {
        return Err("the file changed while it was being fixed; not written".into());
    }
    fs::rename(&tmp.path, &target)
        .map_err(|e| format!("cannot replace {}: {}", path.display(), lower(&e)))?;
    tmp.file = None;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The file at `target` still holds what was read.
fn unchanged(target: &Path, expected: Fingerprint) -> Result<(), String> {
    let changed = || "the file changed while it was being fixed; not written".to_string();
    let f = fs::File::open(target).map_err(|e| lower(&e))?;
    let mut now = Vec::new();
    f.take(expected.byte_len() as u64 + 1)
        .read_to_end(&mut now)
        .map_err(|e| lower(&e))?;
    if Fingerprint::of(&now) != expected {
        return Err(changed());
    }
    Ok(())
}

#[cfg(unix)]
fn links(meta: &fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    if meta.nlink() > 1 {
        return Err(format!(
            "the file has {} hard links, and replacing it would split it from the others; \
             not written (apply `fix --diff` instead)",
            meta.nlink()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn links(_meta: &fs::Metadata) -> Result<(), String> {
    Ok(())
}

/// Give the new file the old one's owner and then every mode bit (chown clears setuid).
#[cfg(unix)]
fn keep_owner_and_mode(file: &fs::File, meta: &fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let new = file.metadata().map_err(|e| lower(&e))?;
    if (new.uid(), new.gid()) != (meta.uid(), meta.gid())
        && std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid())).is_err()
    {
        return Err(format!(
            "the file belongs to {}:{} and a replacement written by this user would not; \
             not written (run as its owner, or apply `fix --diff`)",
            meta.uid(),
            meta.gid()
        ));
    }
    file.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(|e| lower(&e))
}

#[cfg(not(unix))]
fn keep_owner_and_mode(file: &fs::File, meta: &fs::Metadata) -> Result<(), String> {
    file.set_permissions(meta.permissions())
        .map_err(|e| lower(&e))
}

#[cfg(target_os = "linux")]
fn xattr_names(fd: libc::c_int) -> Vec<std::ffi::CString> {
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: the buffer is ours and its length is passed.
        let n = unsafe { libc::flistxattr(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf.truncate(n as usize);
            break;
        }
        let err = std::io::Error::last_os_error().raw_os_error();
        if err == Some(libc::ERANGE) && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        return Vec::new();
    }
    buf.split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .filter_map(|s| std::ffi::CString::new(s).ok())
        .collect()
}

#[cfg(target_os = "linux")]
fn xattr_get(fd: libc::c_int, name: &std::ffi::CStr) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: the buffer is ours and its length is passed.
        let n = unsafe { libc::fgetxattr(fd, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf.truncate(n as usize);
            return Some(buf);
        }
        let err = std::io::Error::last_os_error().raw_os_error();
        if err == Some(libc::ERANGE) && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        return None;
    }
}

/// Copy the extended attributes of `from` to `to`; one that differs and cannot be set is
/// an error naming it.
#[cfg(target_os = "linux")]
fn copy_xattrs(from: &fs::File, to: &fs::File) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let (src, dst) = (from.as_raw_fd(), to.as_raw_fd());
    for name in xattr_names(src) {
        let Some(value) = xattr_get(src, &name) else {
            continue;
        };
        if xattr_get(dst, &name).as_deref() == Some(&value[..]) {
            continue;
        }
        // SAFETY: name is NUL-terminated and value's pointer and length go together.
        let r =
            unsafe { libc::fsetxattr(dst, name.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
        if r != 0 {
            return Err(format!(
                "cannot keep the extended attribute {}: {}; not written",
                name.to_string_lossy(),
                lower(&std::io::Error::last_os_error())
            ));
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn copy_xattrs(_from: &fs::File, _to: &fs::File) -> Result<(), String> {
    Ok(())
}

/// Write a new file of ours (a report), never through a symlink and never into a FIFO
/// or device.
pub fn new_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut o = fs::OpenOptions::new();
    o.write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let mut f = o.open(path).map_err(|e| {
        #[cfg(unix)]
        if e.raw_os_error() == Some(libc::ELOOP) {
            return "it is a symlink; not written through it".to_string();
        }
        lower(&e)
    })?;
    let meta = f.metadata().map_err(|e| lower(&e))?;
    if !meta.is_file() {
        return Err("not a regular file; not written".into());
    }
    f.set_len(0).map_err(|e| lower(&e))?;
    f.write_all(bytes).map_err(|e| lower(&e))?;
    f.flush().map_err(|e| lower(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Hook = Box<dyn Fn(&Path)>;
    thread_local! {
        /// Run just before the final comparison: another writer's turn.
        pub(super) static BEFORE_RENAME: std::cell::RefCell<Option<Hook>> =
            const { std::cell::RefCell::new(None) };
    }

    fn racing(other: impl Fn(&Path) + 'static) -> Result<(), String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("compose.yaml");
        std::fs::write(&p, "old\n").unwrap();
        BEFORE_RENAME.with(|h| *h.borrow_mut() = Some(Box::new(other)));
        let r = replace(&p, Fingerprint::of(b"old\n"), b"new\n");
        BEFORE_RENAME.with(|h| *h.borrow_mut() = None);
        if r.is_err() {
            assert_ne!(std::fs::read_to_string(&p).unwrap(), "new\n");
        }
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left behind");
        r
    }

    #[test]
    fn a_write_just_before_the_rename_is_not_overwritten() {
        let e = racing(|t| std::fs::write(t, "mine\n").unwrap()).unwrap_err();
        assert!(e.contains("changed while it was being fixed"), "{e}");
        // The same bytes written again: only the modification time tells.
        let e = racing(|t| {
            let f = std::fs::File::options().write(true).open(t).unwrap();
            f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        })
        .unwrap_err();
        assert!(e.contains("changed while it was being fixed"), "{e}");
        // Replaced by another file with the same contents: another inode.
        let e = racing(|t| {
            let other = t.with_file_name("other");
            std::fs::write(&other, "old\n").unwrap();
            std::fs::rename(&other, t).unwrap();
        })
        .unwrap_err();
        assert!(e.contains("changed while it was being fixed"), "{e}");
        racing(|_| {}).unwrap();
    }

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
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o4640)).unwrap();
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
            std::fs::metadata(&target).unwrap().permissions().mode() & 0o7777,
            0o4640,
            "the setuid bit is kept too"
        );
    }

    #[test]
    fn temp_names_carry_the_pid() {
        assert_eq!(pid_of(".compose-harden-123-7.tmp"), Some(123));
        assert_eq!(pid_of(".compose-harden-abc.tmp"), None);
        assert_eq!(pid_of(".compose-harden-12-x.tmp"), None);
    }
}

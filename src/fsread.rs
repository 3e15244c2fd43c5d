//! Reading files nobody checked: every input (compose files, Dockerfiles and scripts,
//! `compose-harden.toml`, `.env` files, logs) goes through [`read_bounded`].
//!
//! - The size limit is enforced on the bytes read (`take(limit + 1)`), never on what the
//!   metadata claims: procfs files report a size of 0 and can be endless.
//! - The file is opened without blocking (`O_NONBLOCK`, so a FIFO or a terminal cannot
//!   hold the open) and refused unless the open file is a regular file outside the
//!   pseudo filesystems (`/proc`, `/sys`, `/dev`, cgroup, debugfs …), whatever path or
//!   symlink led to it.
//! - A stop request ([`stop_flag`], set by the first SIGINT or SIGTERM) ends a read
//!   between chunks.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

static STOP: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));
static READING: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// Set when the user asks to stop (the binary registers SIGINT and SIGTERM on it).
pub fn stop_flag() -> Arc<AtomicBool> {
    Arc::clone(&STOP)
}

/// True while nothing has been written yet (the read phase): the binary exits at the
/// first signal then, since there is nothing to finish.
pub fn reading_flag() -> Arc<AtomicBool> {
    Arc::clone(&READING)
}

/// Why a file was not read. [`ReadError::message`] is what users see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    NotFound,
    BrokenSymlink,
    PermissionDenied,
    IsDirectory,
    /// A FIFO, socket or device.
    NotRegular,
    /// A file of a pseudo filesystem (named).
    Pseudo(&'static str),
    /// More than `limit` bytes; `len` when the metadata already said so.
    TooBig {
        limit: u64,
        len: Option<u64>,
    },
    Interrupted,
    Other(String),
}

impl ReadError {
    pub fn message(&self) -> String {
        match self {
            ReadError::NotFound => "no such file or directory".into(),
            ReadError::BrokenSymlink => "broken symlink: its target does not exist".into(),
            ReadError::PermissionDenied => "permission denied".into(),
            ReadError::IsDirectory => "is a directory, expected a file".into(),
            ReadError::NotRegular => {
                "not a regular file (a FIFO, socket or device); skipped".into()
            }
            ReadError::Pseudo(fs) => {
                format!("a file of the {fs} pseudo filesystem, not a regular file; refused")
            }
            ReadError::TooBig { limit, len } => {
                let what = match len {
                    Some(n) => format!("the file is {n} bytes, over"),
                    None => "the file is over".into(),
                };
                format!("{what} the limit of {}", human(*limit))
            }
            ReadError::Interrupted => "interrupted before it was read".into(),
            ReadError::Other(m) => m.clone(),
        }
    }
}

fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> ReadError {
    match e.kind() {
        std::io::ErrorKind::NotFound => match std::fs::symlink_metadata(path) {
            Ok(_) => ReadError::BrokenSymlink,
            Err(_) => ReadError::NotFound,
        },
        std::io::ErrorKind::PermissionDenied => ReadError::PermissionDenied,
        _ => ReadError::Other(lower(e)),
    }
}

/// An io error as a message: lower case, without the `(os error N)` tail.
pub fn lower(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s);
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => s.to_string(),
    }
}

#[cfg(unix)]
fn open(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

#[cfg(not(unix))]
fn open(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

/// Pseudo filesystems by `statfs` magic (linux/magic.h).
#[cfg(target_os = "linux")]
const PSEUDO: &[(i64, &str)] = &[
    (0x9fa0, "proc"),
    (0x6265_6572, "sysfs"),
    (0x1cd1, "devpts"),
    (0x6462_6720, "debugfs"),
    (0x7472_6163, "tracefs"),
    (0x7363_6673, "securityfs"),
    (0x0027_e0eb, "cgroup"),
    (0x6367_7270, "cgroup2"),
    (0xcafe_4a11, "bpf"),
    (0x6265_6570, "configfs"),
    (0xde5e_81e4, "efivarfs"),
    (0x6165_676c, "pstore"),
    (0x6573_5546, "fusectl"),
];

/// Refuse an open regular file of a pseudo filesystem.
#[cfg(target_os = "linux")]
fn pseudo_fs(file: &std::fs::File, path: &Path) -> Option<&'static str> {
    use std::os::fd::AsRawFd;
    // SAFETY: fstatfs writes into a zeroed struct we own, for a descriptor we hold open.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut buf) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)]
    let magic = buf.f_type as i64;
    if let Some((_, name)) = PSEUDO.iter().find(|(m, _)| *m == magic) {
        return Some(name);
    }
    // devtmpfs has tmpfs's magic: tell /dev apart by where the file really is.
    const TMPFS: i64 = 0x0102_1994;
    if magic == TMPFS && std::fs::canonicalize(path).is_ok_and(|p| p.starts_with("/dev")) {
        return Some("dev");
    }
    None
}

#[cfg(not(target_os = "linux"))]
fn pseudo_fs(_file: &std::fs::File, path: &Path) -> Option<&'static str> {
    let p = std::fs::canonicalize(path).ok()?;
    ["/proc", "/sys", "/dev"]
        .iter()
        .find(|d| p.starts_with(d))
        .map(|d| &d[1..])
}

/// Read at most `limit` bytes of the regular file `path` (symlinks followed); more is an
/// error, as is anything that is not a regular file of a real filesystem.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    if STOP.load(Ordering::SeqCst) {
        return Err(ReadError::Interrupted);
    }
    let file = open(path).map_err(|e| io_error(path, &e))?;
    let meta = file.metadata().map_err(|e| io_error(path, &e))?;
    if meta.is_dir() {
        return Err(ReadError::IsDirectory);
    }
    if !meta.is_file() {
        return Err(ReadError::NotRegular);
    }
    if let Some(fs) = pseudo_fs(&file, path) {
        return Err(ReadError::Pseudo(fs));
    }
    if meta.len() > limit {
        return Err(ReadError::TooBig {
            limit,
            len: Some(meta.len()),
        });
    }
    read_limited(file, limit)
}

/// Read a stream to its end, at most `limit` bytes, stopping when asked to.
pub fn read_limited(r: impl Read, limit: u64) -> Result<Vec<u8>, ReadError> {
    let mut r = r.take(limit.saturating_add(1));
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        if STOP.load(Ordering::SeqCst) {
            return Err(ReadError::Interrupted);
        }
        match r.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadError::Other(lower(&e))),
        }
        if out.len() as u64 > limit {
            return Err(ReadError::TooBig { limit, len: None });
        }
    }
    Ok(out)
}

/// [`read_bounded`] as UTF-8 text (invalid UTF-8 is an error).
pub fn read_text(path: &Path, limit: u64) -> Result<String, ReadError> {
    let bytes = read_bounded(path, limit)?;
    String::from_utf8(bytes).map_err(|_| ReadError::Other("not UTF-8 text".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_holds_whatever_the_metadata_says() {
        // procfs reports a size of 0 for files that go on and on.
        #[cfg(target_os = "linux")]
        assert_eq!(
            read_bounded(Path::new("/proc/self/pagemap"), 1 << 20),
            Err(ReadError::Pseudo("proc"))
        );
        let e = read_limited(std::io::repeat(b'a'), 1000).unwrap_err();
        assert_eq!(
            e,
            ReadError::TooBig {
                limit: 1000,
                len: None
            }
        );
        assert_eq!(read_limited(&b"abc"[..], 3).unwrap(), b"abc");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn pseudo_files_are_refused_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        for (target, fs) in [
            ("/proc/self/status", "proc"),
            ("/sys/kernel/uevent_seqnum", "sysfs"),
        ] {
            let link = dir.path().join("Dockerfile");
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(target, &link).unwrap();
            if Path::new(target).exists() {
                assert_eq!(read_bounded(&link, 1 << 20), Err(ReadError::Pseudo(fs)));
            }
        }
        assert_eq!(
            read_bounded(Path::new("/dev/null"), 10),
            Err(ReadError::NotRegular)
        );
    }
}

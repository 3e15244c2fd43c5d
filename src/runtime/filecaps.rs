//! File capabilities of a binary, read from the tar stream `docker cp <ctr>:<path> -`
//! writes (Docker records the `security.capability` xattr as a PAX record). A binary
//! with a file capability outside the bounding set cannot be executed at all: the shell
//! only says `<path>: Operation not permitted`, and the file's own capabilities are what
//! to add back.

use super::procfs::cap_names;

const KEY: &[u8] = b"SCHILY.xattr.security.capability=";

/// The permitted set of a `vfs_cap_data` value (v1: 32 bits; v2, v3: 64 bits).
pub fn decode(value: &[u8]) -> Option<u64> {
    let word = |i: usize| -> Option<u64> {
        let b = value.get(i * 4..i * 4 + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64)
    };
    let magic = word(0)? as u32 & 0xff00_0000;
    let lo = word(1)?;
    match magic {
        0x0100_0000 => Some(lo),
        0x0200_0000 | 0x0300_0000 => Some(lo | (word(3)? << 32)),
        _ => None,
    }
}

/// The permitted file capabilities of the first file of a tar stream, by name.
pub fn from_tar(tar: &[u8]) -> Option<Vec<String>> {
    let header = tar.get(..512)?;
    if header[156] != b'x' {
        return None;
    }
    let size_field = std::str::from_utf8(&header[124..136]).ok()?;
    let size =
        usize::from_str_radix(size_field.trim_matches(|c: char| c == '\0' || c == ' '), 8).ok()?;
    let mut records = tar.get(512..512 + size)?;
    // Records: "<len> <key>=<value>\n", len counting the whole record.
    while !records.is_empty() {
        let sp = records.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&records[..sp]).ok()?.parse().ok()?;
        let record = records.get(..len)?;
        let body = &record[sp + 1..len.saturating_sub(1).max(sp + 1)];
        if let Some(value) = body.strip_prefix(KEY) {
            return decode(value).map(cap_names);
        }
        records = &records[len..];
    }
    None
}

/// Absolute paths a log line says could not be run: `<path>: Operation not permitted`
/// (a shell) or `exec <path>: operation not permitted` (the runtime).
pub fn refused_paths(line: &str) -> Option<String> {
    let lower = line.to_lowercase();
    let end = lower.find(": operation not permitted")?;
    let head = &line[..end];
    let start = head.rfind(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ':');
    let path = &head[start.map_or(0, |i| i + 1)..];
    (path.starts_with('/') && path.len() > 1).then(|| path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar stream as Docker writes it: a PAX header holding the xattr, then the file.
    fn tar_with(value: &[u8]) -> Vec<u8> {
        let mut rec = KEY.to_vec();
        rec.extend_from_slice(value);
        rec.push(b'\n');
        // The length counts its own digits and the space.
        let mut len = rec.len() + 3;
        if len.to_string().len() != 2 {
            len += 1;
        }
        let mut data = format!("{len} ").into_bytes();
        data.extend_from_slice(&rec);
        let mut h = vec![0u8; 512];
        h[..17].copy_from_slice(b"PaxHeaders.0/http");
        h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
        h[156] = b'x';
        h.extend_from_slice(&data);
        h.resize(1024 + 512, 0);
        h
    }

    #[test]
    fn reads_a_v2_net_bind_service_file_cap() {
        // setcap cap_net_bind_service+ep: v2 magic with the effective bit, bit 10.
        let mut v = Vec::new();
        for w in [0x0200_0001u32, 1 << 10, 0, 0, 0] {
            v.extend_from_slice(&w.to_le_bytes());
        }
        assert_eq!(
            from_tar(&tar_with(&v)),
            Some(vec!["NET_BIND_SERVICE".into()])
        );
        let mut v1 = Vec::new();
        for w in [0x0100_0000u32, 1 << 13, 0] {
            v1.extend_from_slice(&w.to_le_bytes());
        }
        assert_eq!(decode(&v1), Some(1 << 13));
        assert_eq!(decode(&[1, 2]), None);
    }

    #[test]
    fn reads_what_docker_cp_wrote() {
        // The first KiB of `docker cp <ctr>:/usr/local/lib/lab/httpd -` (lab image fcap).
        let tar = include_bytes!("../../tests/fixtures/verify/httpd-head.tar");
        assert_eq!(from_tar(tar), Some(vec!["NET_BIND_SERVICE".into()]));
    }

    #[test]
    fn a_file_without_the_record_has_no_caps() {
        let mut plain = vec![0u8; 1024];
        plain[156] = b'0';
        assert_eq!(from_tar(&plain), None);
        assert_eq!(from_tar(b"short"), None);
    }

    #[test]
    fn finds_the_path_refused() {
        let shell =
            "/usr/local/bin/lab-serve: 5: /usr/local/lib/lab/httpd: Operation not permitted";
        assert_eq!(
            refused_paths(shell).as_deref(),
            Some("/usr/local/lib/lab/httpd")
        );
        let runc = "exec /usr/bin/caddy: operation not permitted";
        assert_eq!(refused_paths(runc).as_deref(), Some("/usr/bin/caddy"));
        assert_eq!(
            refused_paths("chown: changing ownership of '/data': Operation not permitted"),
            None
        );
        assert_eq!(refused_paths("setgid: Operation not permitted"), None);
    }
}

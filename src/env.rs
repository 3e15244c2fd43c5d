//! The project's `.env` file and Compose's variable interpolation: `${VAR}`, `$VAR`,
//! `${VAR:-default}`, `${VAR-default}`, `${VAR:+alt}`, `${VAR+alt}`, `${VAR:?err}`, `$$`.
//! Only the `.env` beside the compose file is read (not the shell environment), so a
//! run's result does not depend on who runs it. An unset variable becomes the empty
//! string, as Compose substitutes it; callers say so in their reasons.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// Largest `.env` we read.
const MAX_ENV: u64 = 256 * 1024;

/// The variables of one project directory's `.env`.
#[derive(Debug, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

/// The result of interpolating one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpolated {
    pub text: String,
    /// Variables that were not set and were substituted as empty.
    pub unset: Vec<String>,
    /// A `${VAR:?err}` whose variable is unset: Compose refuses the file.
    pub failed: bool,
}

impl Env {
    /// The `.env` of `dir` (cached: files of one directory share it). Missing, oversized
    /// or non-regular files give an empty environment.
    pub fn load(dir: &Path) -> Arc<Env> {
        static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<Env>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(dir.to_path_buf())
            .or_insert_with(|| Arc::new(Env::read(&dir.join(".env"))))
            .clone()
    }

    fn read(path: &Path) -> Env {
        // Through the one bounded reader: a `.env` linked to a pseudo file (procfs reports
        // a size of 0) or a FIFO must neither be read without end nor block.
        let text = crate::fsread::read_text(path, MAX_ENV).unwrap_or_default();
        Env::parse(&text)
    }

    /// Parse `.env` text: `KEY=value` lines, `export ` prefixes, `#` comments, quoted values.
    pub fn parse(text: &str) -> Env {
        let mut vars = HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            let line = line.strip_prefix("export ").unwrap_or(line);
            if line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let k = k.trim();
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let v = v.trim();
            let v = if let Some(q) = v.strip_prefix('"').and_then(|r| r.split('"').next()) {
                q.to_string()
            } else if let Some(q) = v.strip_prefix('\'').and_then(|r| r.split('\'').next()) {
                q.to_string()
            } else {
                v.split(" #").next().unwrap_or("").trim().to_string()
            };
            vars.insert(k.to_string(), v);
        }
        Env { vars }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Interpolate `s` as Compose does.
    pub fn interpolate(&self, s: &str) -> Interpolated {
        let mut out = Interpolated {
            text: String::new(),
            unset: Vec::new(),
            failed: false,
        };
        let mut rest = s;
        while let Some(i) = rest.find('$') {
            out.text.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            if let Some(r) = after.strip_prefix('$') {
                out.text.push('$');
                rest = r;
            } else if let Some(body) = after.strip_prefix('{') {
                let Some(end) = closing(body) else {
                    out.failed = true;
                    return out;
                };
                self.braced(&body[..end], &mut out);
                rest = &body[end + 1..];
            } else {
                let n = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                if n == 0 {
                    out.text.push('$');
                } else {
                    self.value(&after[..n], &mut out);
                }
                rest = &after[n..];
            }
        }
        out.text.push_str(rest);
        out
    }

    fn value(&self, name: &str, out: &mut Interpolated) {
        match self.get(name) {
            Some(v) => out.text.push_str(v),
            None => out.unset.push(name.to_string()),
        }
    }

    fn braced(&self, inner: &str, out: &mut Interpolated) {
        let ops = [":-", ":?", ":+", "-", "?", "+"];
        let found = ops
            .iter()
            .filter_map(|op| inner.find(op).map(|i| (i, *op)))
            .min_by_key(|(i, op)| (*i, std::cmp::Reverse(op.len())));
        let Some((i, op)) = found else {
            return self.value(inner, out);
        };
        let (name, arg) = (&inner[..i], &inner[i + op.len()..]);
        let v = self.get(name);
        let empty_counts = op.starts_with(':');
        let set = v.is_some_and(|v| !(empty_counts && v.is_empty()));
        match op.trim_start_matches(':') {
            "-" if !set => {
                let d = self.interpolate(arg);
                out.text.push_str(&d.text);
                out.unset.extend(d.unset);
            }
            "?" if !set => out.failed = true,
            "+" if set => out.text.push_str(arg),
            "+" => {}
            _ => out.text.push_str(v.unwrap_or_default()),
        }
    }
}

/// The index of the `}` that closes a `${` whose body starts `body` (nested `${…}` count).
fn closing(body: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_like_compose() {
        let env = Env::parse("TAG=16\nexport EMPTY=\nQ=\"a b\" # c\n# X=1\n");
        let i = |s: &str| env.interpolate(s);
        assert_eq!(i("postgres:${TAG}").text, "postgres:16");
        assert_eq!(i("postgres:$TAG").text, "postgres:16");
        assert_eq!(i("${EMPTY:-x}").text, "x");
        assert_eq!(i("${EMPTY-x}").text, "");
        assert_eq!(i("${NOPE:-${TAG}}").text, "16");
        assert_eq!(i("${Q}").text, "a b");
        assert_eq!(i("$$HOME").text, "$HOME");
        assert_eq!(i("${TAG:+set}").text, "set");
        let u = i("${REGISTRY}app:${X}");
        assert_eq!((u.text.as_str(), u.unset.len()), ("app:", 2));
        assert!(i("${NOPE:?required}").failed);
    }
    #[test]
    fn a_dot_env_linked_to_a_pseudo_file_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/proc/self/environ", dir.path().join(".env")).unwrap();
        let env = Env::read(&dir.path().join(".env"));
        assert!(env.vars.is_empty());
    }
}

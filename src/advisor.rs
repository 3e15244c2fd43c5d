//! The failure advisor behind `compose-harden why`: match a container's log line against
//! known failure signatures and name what to add back. Data: `src/knowledge/signatures.toml`.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    pub id: String,
    pub contains: Vec<String>,
    pub program: String,
    pub cause: String,
    pub add_caps: Vec<String>,
    pub fix: String,
    pub sources: Vec<String>,
    /// A file permission error: the answer is ownership (chown the volume to the service's
    /// uid) or root with DAC_OVERRIDE, and the uid the service runs as matters.
    #[serde(default)]
    pub ownership: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureFile {
    signature: Vec<Signature>,
}

const SIGNATURES: &str = include_str!("knowledge/signatures.toml");

pub fn signatures() -> &'static [Signature] {
    static CELL: OnceLock<Vec<Signature>> = OnceLock::new();
    CELL.get_or_init(|| {
        toml::from_str::<SignatureFile>(SIGNATURES)
            .expect("the built-in signatures.toml is checked by tests")
            .signature
    })
}

/// The first signature every `contains` string of which occurs in `line` (case-insensitive).
pub fn explain(line: &str) -> Option<&'static Signature> {
    let lower = line.to_lowercase();
    signatures()
        .iter()
        .find(|s| s.contains.iter().all(|c| lower.contains(&c.to_lowercase())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_line_maps_to_its_signature() {
        let lines = include_str!("../tests/fixtures/why/lines.txt");
        let mut n = 0;
        for l in lines.lines().filter(|l| !l.trim().is_empty()) {
            let (id, line) = l.split_once('\t').expect("id<TAB>line");
            let got = explain(line).map(|s| s.id.as_str());
            assert_eq!(got, Some(id), "{line}");
            n += 1;
        }
        assert_eq!(n, signatures().len(), "one sample line per signature");
    }

    #[test]
    fn signatures_are_well_formed() {
        let mut ids: Vec<&str> = signatures().iter().map(|s| s.id.as_str()).collect();
        for s in signatures() {
            assert!(!s.sources.is_empty(), "{}: no source", s.id);
            let mut caps = s.add_caps.clone();
            caps.sort();
            assert_eq!(caps, s.add_caps, "{}: add_caps not sorted", s.id);
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), signatures().len(), "duplicate ids");
    }

    /// A source is a web address, a file of this repository, or a GitHub repository
    /// (`owner/repo#123` for an issue, `owner/repo path` for a file): something to open.
    #[test]
    fn every_source_can_be_opened() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for s in signatures() {
            for src in &s.sources {
                let first = src.split(' ').next().unwrap_or_default();
                let ok = if first.starts_with("https://") {
                    true
                } else if first.starts_with("docs/")
                    || first.starts_with("src/")
                    || first.starts_with("lab/")
                {
                    root.join(first).is_file()
                } else {
                    let (repo, rest) = first.split_once('#').unwrap_or((first, ""));
                    let parts: Vec<&str> = repo.split('/').collect();
                    parts.len() == 2
                        && parts.iter().all(|p| !p.is_empty() && !p.ends_with(".md"))
                        && (rest.parse::<u32>().is_ok() || src.contains(' '))
                };
                assert!(ok, "{}: source {src:?} is nothing a user can open", s.id);
            }
        }
    }
}

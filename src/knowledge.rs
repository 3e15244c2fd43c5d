//! The image-profile knowledge base: which user an image runs as, and which capabilities
//! its entrypoint needs. The data lives in `src/knowledge/images.toml`, embedded at build
//! time; every entry cites its sources and says how sure it is.

use std::sync::OnceLock;

use serde::Serialize;

mod profile;

pub use profile::{Class, Confidence, Profile};

/// What each confidence level means, one line each, for README, `rule` and PR bodies.
pub const CONFIDENCE_LEGEND: &[(&str, &str)] = &[
    (
        "verified",
        "checked for this image and tag: its Dockerfile and entrypoint read, or run under reduced capabilities",
    ),
    (
        "from-source",
        "read from the image's Dockerfile or entrypoint source, not run",
    ),
    (
        "inferred",
        "follows from facts about this service (its user, its command), not from the image",
    ),
    (
        "pattern",
        "an image family's usual behaviour (same base, same entrypoint style)",
    ),
    (
        "unverified",
        "nothing specific is known; the fix may break the service and needs --unverified",
    ),
    (
        "inspected",
        "read from the image itself (its config and layers), for one image digest",
    ),
    (
        "measured",
        "measured on a real engine for one image digest (`compose-harden learn`)",
    ),
];

/// The tables `build.rs` makes from `src/knowledge/*.toml`: `ROWS` (each row as JSON),
/// `KEYS` (what matching reads), `EXACT` (sorted repository → rows) and `GLOBBED`.
mod table {
    /// What a row matches on, kept apart so that matching decodes nothing.
    pub struct Key {
        pub repos: &'static [&'static str],
        pub tags: &'static [&'static str],
    }
    include!(concat!(env!("OUT_DIR"), "/knowledge.rs"));
}

/// Row `i`, decoded from its JSON the first time it is asked for.
fn row(i: usize) -> &'static Profile {
    static CELLS: [OnceLock<Profile>; table::ROWS.len()] =
        [const { OnceLock::new() }; table::ROWS.len()];
    CELLS[i].get_or_init(|| {
        serde_json::from_str(table::ROWS[i]).expect("build.rs wrote this row from a Profile")
    })
}

/// The built-in profiles, in priority order (first match wins). Decodes every row: a
/// lookup needs none of this (see [`lookup`]).
pub fn builtin() -> &'static [Profile] {
    static CELL: OnceLock<Vec<Profile>> = OnceLock::new();
    CELL.get_or_init(|| (0..table::ROWS.len()).map(|i| row(i).clone()).collect())
}

/// Parse profile rows written like `src/knowledge/images.toml` (`[[image]]` tables).
pub fn parse_profiles(text: &str) -> Result<Vec<Profile>, String> {
    toml::from_str::<profile::ProfileFile>(text)
        .map(|f| f.image)
        .map_err(|e| e.to_string())
}

/// An image reference reduced to what profiles match on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageRef {
    /// Repository without the default registry or `library/` (`postgres`, `bitnami/redis`,
    /// `quay.io/keycloak/keycloak`).
    pub repo: String,
    /// The tag, when it is known (`None` for no tag, or a tag from an unset variable).
    pub tag: Option<String>,
    /// The tag came from a variable without a default, so it is unknown.
    pub tag_unknown: bool,
}

/// Replace `${VAR:-default}` / `${VAR-default}` by their default; `None` when a variable
/// without a default remains.
pub fn interpolate(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
            continue;
        }
        if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}')?;
            let inner = &body[..end];
            let default = inner
                .split_once(":-")
                .or_else(|| inner.split_once('-'))
                .map(|(_, d)| d)?;
            if default.contains('$') {
                return None;
            }
            out.push_str(default);
            rest = &body[end + 1..];
        } else {
            return None;
        }
    }
    out.push_str(rest);
    Some(out)
}

const DEFAULT_REGISTRIES: &[&str] = &[
    "docker.io/",
    "index.docker.io/",
    "registry-1.docker.io/",
    "registry.hub.docker.com/",
    "mirror.gcr.io/",
];

impl ImageRef {
    /// Parse an `image:` value. `None` when the repository itself is unknown.
    pub fn parse(raw: &str) -> Option<ImageRef> {
        let raw = raw.trim();
        let (name, tag_unknown_from_var) = match interpolate(raw) {
            Some(s) => (s, false),
            None => {
                // The repository may still be known when only the tag is a variable.
                let (repo, _) = split_tag(raw);
                (interpolate(repo)?, true)
            }
        };
        let name = name.split('@').next().unwrap_or("").to_ascii_lowercase();
        let (repo, tag) = split_tag(&name);
        let mut repo = repo.to_string();
        for reg in DEFAULT_REGISTRIES {
            if let Some(r) = repo.strip_prefix(reg) {
                repo = r.to_string();
            }
        }
        if let Some(r) = repo.strip_prefix("library/") {
            repo = r.to_string();
        }
        if repo.is_empty() || repo.contains(['$', ' ']) {
            return None;
        }
        let tag = if tag_unknown_from_var {
            None
        } else {
            tag.map(str::to_string)
        };
        Some(ImageRef {
            repo,
            tag,
            tag_unknown: tag_unknown_from_var,
        })
    }

    pub fn display(&self) -> String {
        match &self.tag {
            Some(t) => format!("{}:{t}", self.repo),
            None => self.repo.clone(),
        }
    }
}

fn split_tag(name: &str) -> (&str, Option<&str>) {
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(i) => (&name[..slash + i], Some(&name[slash + i + 1..])),
        None => (name, None),
    }
}

/// Glob match with `*` (any run) and `?` (one character), on bytes (patterns are ASCII).
pub fn glob(pattern: &str, s: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), s.as_bytes());
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

impl Profile {
    pub fn matches(&self, image: &ImageRef) -> bool {
        if !self.repos.iter().any(|r| glob(r, &image.repo)) {
            return false;
        }
        if self.tags.is_empty() {
            return true;
        }
        match &image.tag {
            Some(tag) => self.tags.iter().any(|t| glob(t, tag)),
            None => false,
        }
    }
}

fn key_matches(key: &table::Key, image: &ImageRef) -> bool {
    if !key.repos.iter().any(|r| glob(r, &image.repo)) {
        return false;
    }
    if key.tags.is_empty() {
        return true;
    }
    match &image.tag {
        Some(tag) => key.tags.iter().any(|t| glob(t, tag)),
        None => false,
    }
}

/// The built-in rows that can match `repo`, in the files' order: the rows naming it
/// exactly (a binary search) merged with the rows whose repos are globs.
fn candidates(repo: &str) -> impl Iterator<Item = usize> {
    let exact = table::EXACT
        .binary_search_by(|(r, _)| (*r).cmp(repo))
        .map_or(&[][..], |i| table::EXACT[i].1);
    let (mut e, mut g) = (exact.iter().peekable(), table::GLOBBED.iter().peekable());
    std::iter::from_fn(move || match (e.peek(), g.peek()) {
        (Some(a), Some(b)) if a <= b => {
            if a == b {
                g.next();
            }
            e.next()
        }
        (_, Some(_)) => g.next(),
        _ => e.next(),
    })
    .map(|&i| i as usize)
}

/// The first profile (extra profiles first, then the built-in ones) matching `image`.
/// Only the row that matches is decoded.
pub fn lookup<'p>(extra: &'p [Profile], image: &ImageRef) -> Option<&'p Profile>
where
    'static: 'p,
{
    if let Some(p) = extra.iter().find(|p| p.matches(image)) {
        return Some(p);
    }
    candidates(&image.repo)
        .find(|&i| key_matches(&table::KEYS[i], image))
        .map(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    #[test]
    fn normalises_registries_library_tags_and_digests() {
        assert_eq!(image("docker.io/library/postgres:16").repo, "postgres");
        assert_eq!(image("postgres:16@sha256:abc").tag.as_deref(), Some("16"));
        assert_eq!(
            image("quay.io/keycloak/keycloak:26").repo,
            "quay.io/keycloak/keycloak"
        );
        assert_eq!(image("localhost:5000/app").repo, "localhost:5000/app");
        assert_eq!(image("localhost:5000/app:1").tag.as_deref(), Some("1"));
    }

    #[test]
    fn variables_use_their_default_or_are_unknown() {
        let i = image("${REDIS_IMAGE:-redis}:${REDIS_TAG:-7-alpine}");
        assert_eq!(
            (i.repo.as_str(), i.tag.as_deref()),
            ("redis", Some("7-alpine"))
        );
        let i = image("redis:${TAG}");
        assert_eq!(
            (i.repo.as_str(), i.tag, i.tag_unknown),
            ("redis", None, true)
        );
        assert!(ImageRef::parse("${IMAGE}").is_none());
    }

    #[test]
    fn globs() {
        assert!(glob("*alpine*", "7-alpine3.20"));
        assert!(glob("7*", "7.2"));
        assert!(!glob("7*", "17"));
        assert!(glob("bitnami/*", "bitnami/redis"));
        assert!(glob("a?c", "abc"));
    }

    #[test]
    fn the_embedded_rows_are_the_row_files_in_order() {
        let mut files: Vec<_> = std::fs::read_dir("src/knowledge")
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .filter(|p| !p.ends_with("signatures.toml"))
            .collect();
        files.sort_by_key(|p| (!p.ends_with("images.toml"), p.clone()));
        let mut rows = Vec::new();
        for f in files {
            rows.extend(parse_profiles(&std::fs::read_to_string(f).unwrap()).unwrap());
        }
        let json = |v: &[Profile]| serde_json::to_string(v).unwrap();
        assert_eq!(json(builtin()), json(&rows));
    }

    /// The indexed lookup finds what walking every row in order finds.
    #[test]
    fn lookup_by_repository_is_the_first_match_of_a_walk() {
        let rows = builtin();
        let mut probes = vec![image("bitnami/unknown:1"), image("nope"), image("redis")];
        for p in rows {
            for r in &p.repos {
                let r = r.replace(['*', '?'], "x");
                probes.push(image(&r));
                for t in p.tags.iter().chain([&"latest".to_string()]) {
                    probes.push(image(&format!("{r}:{}", t.replace(['*', '?'], "1"))));
                }
            }
        }
        for probe in &probes {
            let walked = rows.iter().find(|p| p.matches(probe));
            let found = lookup(&[], probe);
            assert_eq!(
                found.map(|p| serde_json::to_string(p).unwrap()),
                walked.map(|p| serde_json::to_string(p).unwrap()),
                "{}",
                probe.display()
            );
        }
        assert!(probes.len() > 300, "{} probes", probes.len());
    }

    #[test]
    fn every_builtin_profile_is_well_formed() {
        let caps = crate::facts::LINUX_CAPS;
        let profiles = builtin();
        assert!(profiles.len() >= 60, "only {} profiles", profiles.len());
        for p in profiles {
            let name = p.repos.join(",");
            assert!(!p.repos.is_empty(), "profile without repos");
            assert!(
                !p.sources.is_empty() && p.sources.iter().all(|s| !s.trim().is_empty()),
                "{name}: no source"
            );
            assert!(!p.why.trim().is_empty(), "{name}: no why");
            for c in p.caps_as_root.iter().chain(&p.caps_as_nonroot) {
                assert!(caps.contains(&c.as_str()), "{name}: unknown capability {c}");
            }
            let mut sorted = p.caps_as_root.clone();
            sorted.sort();
            assert_eq!(sorted, p.caps_as_root, "{name}: caps_as_root not sorted");
            if let Some(u) = &p.user {
                let (uid, gid) = u
                    .split_once(':')
                    .unwrap_or_else(|| panic!("{name}: user {u} lacks :gid"));
                assert!(uid.parse::<u32>().is_ok_and(|n| n > 0), "{name}: user {u}");
                assert!(gid.parse::<u32>().is_ok(), "{name}: user {u}");
            }
        }
        // No profile may be unreachable behind an earlier catch-all for the same repo.
        for (i, p) in profiles.iter().enumerate() {
            for earlier in &profiles[..i] {
                if earlier.tags.is_empty() {
                    for r in &p.repos {
                        assert!(
                            !earlier.repos.iter().any(|e| e == r),
                            "{r}: shadowed by an earlier row without tags"
                        );
                    }
                }
            }
        }
    }
}

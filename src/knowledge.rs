//! The image-profile knowledge base: which user an image runs as, and which capabilities
//! its entrypoint needs. The data lives in `src/knowledge/images.toml`, embedded at build
//! time; every entry cites its sources and says how sure it is.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// How an image starts and drops privileges (domain classes A–E).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// Root entrypoint that prepares its volumes, then steps down (gosu, su-exec, setpriv).
    RootThenDrop,
    /// The image's own `USER` is not root.
    NonRoot,
    /// A root master that starts unprivileged workers (nginx, httpd, php-fpm).
    SelfDroppingDaemon,
    /// Root, never drops, needs no capabilities (static binaries).
    RootNoDrop,
    /// A general base image; what it needs depends on the service's own command.
    BaseImage,
    /// Needs root and broad capabilities by design; report, never harden automatically.
    DoNotHarden,
}

/// How well a fact is established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Confidence {
    Unverified,
    Pattern,
    Inferred,
    FromSource,
    /// Read from the image itself (its config and layers), keyed by its digest.
    Inspected,
    Verified,
    /// Measured on a real engine for one image digest (`compose-harden learn`).
    Measured,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Verified => "verified",
            Confidence::FromSource => "from-source",
            Confidence::Inferred => "inferred",
            Confidence::Pattern => "pattern",
            Confidence::Unverified => "unverified",
            Confidence::Inspected => "inspected",
            Confidence::Measured => "measured",
        }
    }

    /// Whether fixes built on this fact may be applied without `--unverified`.
    pub fn is_trusted(self) -> bool {
        self >= Confidence::Inferred
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub repos: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The tags (globs) whose Dockerfile and entrypoint were read or run for this row. A
    /// service whose tag is outside them, or unknown, gets the row's facts without the
    /// row's confidence. `["*"]` says the behaviour was checked not to depend on the tag.
    #[serde(default)]
    pub checked_tags: Vec<String>,
    /// The image digest a `measured` or `inspected` row holds for (`sha256:…`).
    #[serde(default)]
    pub digest: Option<String>,
    pub class: Class,
    pub image_user: String,
    #[serde(default)]
    pub user: Option<String>,
    pub caps_as_root: Vec<String>,
    pub caps_as_nonroot: Vec<String>,
    #[serde(default)]
    pub low_ports: Vec<u16>,
    pub nnp: bool,
    pub confidence: Confidence,
    pub why: String,
    #[serde(default)]
    pub notes: Option<String>,
    pub sources: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    image: Vec<Profile>,
}

/// The built-in profile files, in priority order: hand-checked rows first, then the official
/// images, then the vendor families (whose globs must not shadow the rows above them).
const FILES: &[(&str, &str)] = &[
    ("images.toml", include_str!("knowledge/images.toml")),
    ("official.toml", include_str!("knowledge/official.toml")),
    ("vendors.toml", include_str!("knowledge/vendors.toml")),
];

/// The built-in profiles, in priority order (first match wins).
pub fn builtin() -> &'static [Profile] {
    static CELL: OnceLock<Vec<Profile>> = OnceLock::new();
    CELL.get_or_init(|| {
        FILES
            .iter()
            .flat_map(|(_, text)| {
                parse_profiles(text).expect("the built-in profile files are checked by tests")
            })
            .collect()
    })
}

pub fn parse_profiles(text: &str) -> Result<Vec<Profile>, String> {
    toml::from_str::<ProfileFile>(text)
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

/// Built-in profiles indexed by exact repository name; profiles whose repos are globs are
/// kept aside. Lookups keep the file's order: first match wins.
struct Index {
    exact: std::collections::HashMap<&'static str, Vec<usize>>,
    globbed: Vec<usize>,
}

/// Parse the built-in profiles now (on a background thread, while the inputs are being
/// found and read) so the first service to be checked does not wait for them.
pub fn warm_up() {
    rayon::spawn(|| {
        index();
    });
}

fn index() -> &'static Index {
    static CELL: OnceLock<Index> = OnceLock::new();
    CELL.get_or_init(|| {
        let mut exact: std::collections::HashMap<&'static str, Vec<usize>> =
            std::collections::HashMap::new();
        let mut globbed = Vec::new();
        for (i, p) in builtin().iter().enumerate() {
            for r in &p.repos {
                if r.contains(['*', '?']) {
                    if globbed.last() != Some(&i) {
                        globbed.push(i);
                    }
                } else {
                    let v = exact.entry(r.as_str()).or_default();
                    if v.last() != Some(&i) {
                        v.push(i);
                    }
                }
            }
        }
        Index { exact, globbed }
    })
}

/// The first profile (extra profiles first, then the built-in ones) matching `image`.
pub fn lookup<'p>(extra: &'p [Profile], image: &ImageRef) -> Option<&'p Profile>
where
    'static: 'p,
{
    if let Some(p) = extra.iter().find(|p| p.matches(image)) {
        return Some(p);
    }
    let idx = index();
    let profiles = builtin();
    let mut candidates: Vec<usize> = idx
        .exact
        .get(image.repo.as_str())
        .cloned()
        .unwrap_or_default();
    candidates.extend(idx.globbed.iter().copied());
    candidates.sort_unstable();
    candidates.dedup();
    candidates
        .into_iter()
        .map(|i| &profiles[i])
        .find(|p| p.matches(image))
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

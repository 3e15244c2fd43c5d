//! `compose-harden.toml`: team settings, found upward from each compose file (or given
//! with `--config`). Unknown keys are errors that name the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::knowledge::Profile;

/// Largest configuration file read.
const MAX_CONFIG: u64 = 1 << 20;

pub const FILE_NAMES: &[&str] = &["compose-harden.toml", ".compose-harden.toml"];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// The `user:` proposed for images nothing is known about.
    pub user: Option<String>,
    /// Apply unverified fixes too.
    pub unverified: Option<bool>,
    /// The daemon runs with userns-remap.
    pub userns_remap: Option<bool>,
    /// Run root-then-drop images as their own uid:gid.
    pub set_user: Option<bool>,
    /// Rules turned off (ids or names).
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Only these rules run (ids or names); empty: all of them.
    #[serde(default)]
    pub select: Vec<String>,
    /// Per-service overrides, by service name.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceOverride>,
    /// Extra image profiles; they extend or override the built-in knowledge base.
    #[serde(default)]
    pub image: Vec<Profile>,
    /// File sets Compose runs together (`[[project]] files = ["compose.yaml", "prod.yaml"]`,
    /// relative to this file), analysed as one project by a walk.
    #[serde(default)]
    pub project: Vec<ProjectSet>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ProjectSet {
    pub files: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServiceOverride {
    /// The capabilities this service needs, instead of what the knowledge base says.
    pub cap_add: Option<Vec<String>>,
    /// The `user:` to write for this service (a verified fix: the team said so).
    pub user: Option<String>,
    /// Rules skipped for this service.
    #[serde(default)]
    pub skip: Vec<String>,
}

impl Config {
    /// Parse a config file's text; errors name the file, line and column.
    pub fn parse(path: &Path, text: &str) -> Result<Config, String> {
        Config::parse_at(text)
            .map_err(|(line, col, m)| format!("{}:{line}:{col}: error: {m}", path.display()))
    }

    /// Parse a config file's text; an error carries its 1-based line and column.
    pub fn parse_at(text: &str) -> Result<Config, (usize, usize, String)> {
        toml::from_str::<Config>(text).map_err(|e| {
            let (line, col) = e
                .span()
                .map(|s| {
                    let before = &text[..s.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                    (line, col)
                })
                .unwrap_or((1, 1));
            (line, col, format!("invalid config: {}", e.message()))
        })
    }

    /// Read and parse a config file; an error carries its position when it has one.
    pub fn load(path: &Path) -> Result<Config, (Option<(usize, usize)>, String)> {
        let text = crate::fsread::read_text(path, MAX_CONFIG)
            .map_err(|e| (None, format!("cannot read config: {}", e.message())))?;
        Config::parse_at(&text).map_err(|(l, c, m)| (Some((l, c)), m))
    }
}

/// The config file that governs `dir`: the nearest one upward, up to the repository root.
pub fn find(dir: &Path) -> Option<PathBuf> {
    find_within(dir, None)
}

/// The nearest config file upward from `dir`, searching no higher than `root` (the
/// project root) nor than the git work tree holding `dir`: a `compose-harden.toml` above
/// the repository an untrusted pull request is checked out in does not apply to it.
pub fn find_within(dir: &Path, root: Option<&Path>) -> Option<PathBuf> {
    let start = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let git = crate::project::git_root(&start);
    let stop = git.as_deref().or(root);
    // Named relative to the current directory when it lies below it, as users name files.
    let cwd = std::env::current_dir().and_then(std::fs::canonicalize).ok();
    for d in start.ancestors() {
        for name in FILE_NAMES {
            let p = d.join(name);
            if p.is_file() {
                return Some(match cwd.as_deref().and_then(|c| p.strip_prefix(c).ok()) {
                    Some(rel) => rel.to_path_buf(),
                    None => p,
                });
            }
        }
        if stop.is_some_and(|s| d == s) {
            break;
        }
    }
    None
}

/// The starting config `compose-harden init` writes.
pub const TEMPLATE: &str = r#"# compose-harden configuration (https://github.com/compose-harden/compose-harden)
# Found upward from each compose file; `--config FILE` picks one explicitly.
# Command-line flags win over these settings.

# The `user:` proposed for images nothing is known about (an unverified fix).
# user = "10001:10001"

# Apply unverified fixes too (the same as --unverified).
# unverified = false

# The Docker daemon runs with userns-remap (the same as --userns-remap).
# userns-remap = false

# Run root-then-drop images (postgres, redis …) as their own uid:gid (--set-user).
# set-user = false

# Rules turned off everywhere, by id or name.
# ignore = ["CH001"]

# Only these rules run (by id or name); unset: all of them.
# select = ["CH002", "CH003", "CH008"]

# Per-service overrides, by service name.
# [services.db]
# cap_add = ["CHOWN", "SETGID", "SETUID"]   # what this service needs, instead of the knowledge base
# user = "999:999"                          # the user to write for it
# skip = ["CH004"]                          # rules skipped for it

# Extra image profiles, in the format of the built-in knowledge base
# (src/knowledge/images.toml); they are tried before the built-in ones.
# [[image]]
# repos = ["ghcr.io/acme/worker"]
# class = "non-root"
# image_user = "10001"
# caps_as_root = []
# caps_as_nonroot = []
# nnp = true
# confidence = "verified"
# why = "our worker image runs as 10001 and changes no user"
# sources = ["acme/worker Dockerfile"]
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_parses_and_unknown_keys_are_named() {
        let c = Config::parse(Path::new("t.toml"), TEMPLATE).unwrap();
        assert!(c.services.is_empty());
        let e = Config::parse(Path::new("t.toml"), "userr = \"1:1\"\n").unwrap_err();
        assert!(
            e.starts_with("t.toml:1:1: error: invalid config: unknown field `userr`"),
            "{e}"
        );
        let e = Config::parse(Path::new("t.toml"), "[services.db]\ncap-add = []\n").unwrap_err();
        assert!(e.contains("unknown field `cap-add`"), "{e}");
    }
}

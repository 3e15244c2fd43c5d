//! The types of a profile row, shared by the crate and by `build.rs` (which reads every
//! `src/knowledge/*.toml` into them at compile time, so a malformed row fails the build).
//! Only `serde` may be used here.

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
pub struct ProfileFile {
    pub image: Vec<Profile>,
}

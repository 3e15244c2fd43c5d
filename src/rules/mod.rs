//! The rules. Each rule lives in its own file; its doc comment is the explanation that
//! `compose-harden rule <ID>` prints. [`REGISTRY`] is the one table that binds ids to rules;
//! its order is the order of the docs and the order in which new keys are written.

use serde::Serialize;

use crate::edit::Fix;
use crate::facts::ServiceFacts;

mod cap_drop_all;
mod docker_socket;
mod no_new_privileges;
mod non_root_user;
mod privileged;
mod starved_caps;
mod unused_suppression;
mod userns_mode;

/// Capture a rule's doc comment as its user-facing explanation.
macro_rules! declare_rule {
    ($(#[doc = $doc:literal])+ pub struct $name:ident;) => {
        $(#[doc = $doc])+
        pub struct $name;
        impl $name {
            pub const DOC: &'static str = concat!($($doc, "\n"),+);
        }
    };
}
pub(crate) use declare_rule;

/// How sure a finding's reasoning is, shown next to every edit.
pub use crate::knowledge::Confidence;

/// What a finding's reasoning rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Evidence {
    /// A knowledge-base row for the image (and tag).
    Profile,
    /// The service's Dockerfile.
    Dockerfile,
    /// The compose file's own settings.
    ComposeFile,
    /// `compose-harden.toml`.
    Config,
    /// Nothing about this image: a general argument only.
    Generic,
}

impl Evidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Evidence::Profile => "profile",
            Evidence::Dockerfile => "dockerfile",
            Evidence::ComposeFile => "compose-file",
            Evidence::Config => "config",
            Evidence::Generic => "generic",
        }
    }
}

/// A finding on one service, with the fix that addresses it when there is one.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    pub rule: &'static str,
    pub rule_name: &'static str,
    pub service: String,
    /// Byte offset the finding points at (the service key, or the offending key).
    #[serde(skip)]
    pub offset: usize,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// Why the fix is what it is (or why there is none).
    pub reason: SharedStr,
    pub confidence: Confidence,
    /// What kind of evidence the reasoning rests on (generic cases apart from backed ones).
    pub evidence: Evidence,
    pub source: Option<SharedStr>,
    pub fix: Option<Fix>,
    /// A short description of the fix, e.g. `add cap_drop: [ALL], cap_add: [CHOWN]`.
    pub fix_title: Option<SharedStr>,
}

/// Text that many findings repeat (a reason, a source, a fix title): a big file has
/// thousands of findings but a few dozen such texts, kept once each (see [`Interner`]).
pub type SharedStr = std::sync::Arc<str>;

impl Diagnostic {
    /// Add `more` to the end of the reason.
    pub fn extend_reason(&mut self, more: &str) {
        self.reason = format!("{}{more}", self.reason).into();
    }
}

/// One copy of each distinct [`SharedStr`] text of a check; shared by the threads checking
/// the services of one file.
#[derive(Default)]
pub struct Interner(std::sync::Mutex<std::collections::HashSet<SharedStr>>);

impl Interner {
    fn one(&self, text: &mut SharedStr) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match seen.get(&**text) {
            Some(kept) => *text = kept.clone(),
            None => {
                seen.insert(text.clone());
            }
        }
    }

    /// Replace the repeated texts of `d` by the copies kept so far.
    pub fn intern(&self, d: &mut Diagnostic) {
        self.one(&mut d.reason);
        for text in [&mut d.source, &mut d.fix_title].into_iter().flatten() {
            self.one(text);
        }
    }
}

pub type CheckFn = fn(&ServiceFacts) -> Option<Diagnostic>;

pub struct Rule {
    pub id: &'static str,
    pub name: &'static str,
    pub summary: &'static str,
    pub fixable: bool,
    pub doc: &'static str,
    pub check: CheckFn,
}

pub static REGISTRY: &[Rule] = &[
    Rule {
        id: "CH001",
        name: "non-root-user",
        summary: "service runs as root",
        fixable: true,
        doc: non_root_user::NonRootUser::DOC,
        check: non_root_user::check,
    },
    Rule {
        id: "CH002",
        name: "no-new-privileges",
        summary: "service may gain privileges through setuid binaries",
        fixable: true,
        doc: no_new_privileges::NoNewPrivileges::DOC,
        check: no_new_privileges::check,
    },
    Rule {
        id: "CH003",
        name: "cap-drop-all",
        summary: "service runs with all default capabilities",
        fixable: true,
        doc: cap_drop_all::CapDropAll::DOC,
        check: cap_drop_all::check,
    },
    Rule {
        id: "CH004",
        name: "userns-mode",
        summary: "userns_mode does not match what the service needs",
        fixable: true,
        doc: userns_mode::UsernsMode::DOC,
        check: userns_mode::check,
    },
    Rule {
        id: "CH005",
        name: "privileged",
        summary: "service runs privileged",
        fixable: false,
        doc: privileged::Privileged::DOC,
        check: privileged::check,
    },
    Rule {
        id: "CH006",
        name: "docker-socket",
        summary: "service mounts the Docker socket",
        fixable: false,
        doc: docker_socket::DockerSocket::DOC,
        check: docker_socket::check,
    },
    Rule {
        id: "CH007",
        name: "unused-suppression",
        summary: "a suppression comment matches no finding",
        fixable: false,
        doc: unused_suppression::UnusedSuppression::DOC,
        check: unused_suppression::check,
    },
    Rule {
        id: "CH008",
        name: "starved-caps",
        summary: "cap_drop: [ALL] without the capabilities the image needs",
        fixable: true,
        doc: starved_caps::StarvedCaps::DOC,
        check: starved_caps::check,
    },
];

/// Find a rule by id (`CH003`) or name (`cap-drop-all`), case-insensitively.
pub fn find(code: &str) -> Option<&'static Rule> {
    REGISTRY
        .iter()
        .find(|r| r.id.eq_ignore_ascii_case(code) || r.name.eq_ignore_ascii_case(code))
}

/// The explanation of a rule, with the one leading space of each doc line removed.
pub fn explanation(rule: &Rule) -> String {
    rule.doc
        .lines()
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

impl Rule {
    /// Start a diagnostic for `facts`' service pointing at its key.
    pub fn diagnostic(&'static self, facts: &ServiceFacts, message: String) -> Diagnostic {
        let offset = facts.doc.tree.node(facts.service.key).start();
        let (line, column) = facts.doc.pos(facts.service.key);
        Diagnostic {
            rule: self.id,
            rule_name: self.name,
            service: facts.service.name.clone(),
            offset,
            line,
            column,
            message,
            reason: SharedStr::from(""),
            confidence: Confidence::Verified,
            evidence: Evidence::ComposeFile,
            source: None,
            fix: None,
            fix_title: None,
        }
    }
}

/// The registry entry for `id`; rules call this to build their diagnostics.
pub(crate) fn rule(id: &str) -> &'static Rule {
    REGISTRY
        .iter()
        .find(|r| r.id == id)
        .expect("rule ids are fixed")
}

//! From evidence lines to a proposed profile: class, user, capabilities, no-new-privileges.
//! Every decision here names the finding it rests on; where nothing decides, the proposal
//! says it cannot tell (an unknown program as root: only a measurement can).

use serde::{Deserialize, Serialize};

use super::{Evidence, Finding};
use crate::knowledge::{Class, Confidence, Profile};

/// A profile proposed from evidence, before a reviewer names the image it is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub class: Class,
    pub image_user: String,
    /// The user a root entrypoint steps down to (`postgres`, `999`), as written.
    pub steps_down_to: Option<String>,
    pub caps_as_root: Vec<String>,
    pub caps_as_nonroot: Vec<String>,
    pub nnp: bool,
    pub confidence: Confidence,
    pub why: String,
    /// Why the evidence cannot decide, when it cannot.
    pub cannot_tell: Option<String>,
}

/// What a daemon's root master needs to start its workers as another user.
fn daemon_caps(name: &str) -> &'static [&'static str] {
    match name {
        "nginx" => &["CHOWN", "SETGID", "SETUID"],
        "php-fpm" => &["SETGID", "SETUID"],
        _ => &["SETGID", "SETUID"],
    }
}

pub fn is_root(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or("").trim();
    name.is_empty() || name == "root" || name == "0"
}

/// Propose a profile from evidence lines (a Dockerfile's, its scripts', an image's).
pub fn propose(evidence: &[Evidence]) -> Proposal {
    let find = |f: fn(&Finding) -> bool| evidence.iter().filter(move |e| f(&e.finding));
    let user = evidence.iter().rev().find_map(|e| match &e.finding {
        Finding::User { user } => Some(user.clone()),
        _ => None,
    });
    let image_user = user.clone().unwrap_or_else(|| "root".into());
    let step = find(|f| matches!(f, Finding::StepDown { .. })).next();
    let s6 = find(|f| matches!(f, Finding::S6Overlay)).next();
    let daemon = evidence.iter().find_map(|e| match &e.finding {
        Finding::Daemon { name } => Some(name.as_str()),
        _ => None,
    });
    let chown: Vec<&Evidence> = find(|f| matches!(f, Finding::Chown { .. })).collect();
    let recursive = chown.iter().any(|e| {
        matches!(
            e.finding,
            Finding::Chown {
                recursive: true,
                ..
            }
        )
    });
    let file_caps: Vec<String> = evidence
        .iter()
        .flat_map(|e| match &e.finding {
            Finding::Setcap { caps, .. } => caps.clone(),
            _ => Vec::new(),
        })
        .collect();
    let setuid = find(|f| matches!(f, Finding::SetuidBit { .. } | Finding::Sudo)).next();
    let ping = find(|f| matches!(f, Finding::Ping)).next();
    let mut p = Proposal {
        class: Class::RootNoDrop,
        image_user: image_user.clone(),
        steps_down_to: None,
        caps_as_root: Vec::new(),
        caps_as_nonroot: sorted(file_caps.clone()),
        nnp: true,
        confidence: Confidence::Inferred,
        why: String::new(),
        cannot_tell: None,
    };
    let mut why: Vec<String> = Vec::new();
    let mut caps: Vec<&str> = Vec::new();
    if let Some(e) = s6 {
        p.class = Class::DoNotHarden;
        p.confidence = Confidence::Pattern;
        caps.extend(["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"]);
        why.push(format!(
            "s6-overlay ({}:{}) starts as root and sets up /run before it drops",
            e.file, e.line
        ));
    } else if !is_root(&image_user) {
        p.class = Class::NonRoot;
        p.confidence = Confidence::FromSource;
        why.push(format!("runs as {image_user} (USER)"));
    } else if let Some(e) = step {
        let Finding::StepDown { tool, user } = &e.finding else {
            unreachable!()
        };
        p.class = Class::RootThenDrop;
        p.steps_down_to = user.clone();
        caps.extend(["SETGID", "SETUID"]);
        let to = user
            .as_deref()
            .map(|u| format!(" to {u}"))
            .unwrap_or_default();
        why.push(format!(
            "steps down{to} with {tool} ({}:{})",
            e.file, e.line
        ));
    } else if let Some(name) = daemon {
        p.class = Class::SelfDroppingDaemon;
        caps.extend(daemon_caps(name));
        why.push(format!(
            "{name}'s root master starts its workers as another user"
        ));
    } else {
        let start = evidence.iter().rev().find_map(|e| match &e.finding {
            Finding::Start { words, .. } => Some(words.join(" ")),
            _ => None,
        });
        let what = start.map_or("its command".into(), |s| format!("`{s}`"));
        p.confidence = Confidence::Unverified;
        p.cannot_tell = Some(format!(
            "runs {what} as root and nothing read says what it needs: only a measurement (learn) can tell"
        ));
        why.push(format!("runs {what} as root"));
    }
    let as_root = p.class != Class::NonRoot;
    if as_root && let Some(e) = chown.first() {
        caps.push("CHOWN");
        let mut text = format!("chowns at start ({}:{})", e.file, e.line);
        if recursive {
            // A root walk over a data dir another user owns (mode 0700 after the first
            // start) needs DAC_OVERRIDE on the restart.
            caps.push("DAC_OVERRIDE");
            text.push_str(", walking a tree the service user owns on restart");
        }
        why.push(text);
    }
    if as_root && let Some(e) = ping {
        caps.push("NET_RAW");
        why.push(format!("runs ping ({}:{})", e.file, e.line));
    }
    if !file_caps.is_empty() {
        // The kernel refuses to exec a file whose capabilities are outside the bounding
        // set; with no-new-privileges the exec works but the process gains none of them.
        why.push(format!(
            "runs a binary carrying file capabilities ({}): they must stay in the bounding set",
            file_caps.join(", ")
        ));
    }
    if as_root {
        // Started as root, the bounding set is cap_add: the exec needs them there too.
        caps.extend(file_caps.iter().map(String::as_str));
    }
    let mut nonroot_caps = file_caps.clone();
    let runs_nonroot = !as_root || p.class == Class::RootThenDrop || daemon.is_some();
    if runs_nonroot && let Some(e) = setuid {
        p.nnp = false;
        why.push(format!(
            "a setuid helper is used ({}:{}): no-new-privileges would break it",
            e.file, e.line
        ));
        if matches!(e.finding, Finding::Sudo) && !as_root {
            // sudo becomes root and changes ids; what it runs then runs as root.
            nonroot_caps.extend(["SETGID", "SETUID"].map(str::to_string));
            if !chown.is_empty() {
                nonroot_caps.push("CHOWN".into());
            }
            if recursive {
                nonroot_caps.push("DAC_OVERRIDE".into());
            }
        }
    }
    p.caps_as_nonroot = sorted(nonroot_caps);
    p.caps_as_root = sorted(caps.into_iter().map(str::to_string).collect());
    p.why = why.join("; ");
    p
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

impl Proposal {
    /// The `[[image]]` row for `repos` (tags, checked tags, digest and sources as given).
    pub fn to_profile(
        &self,
        repos: Vec<String>,
        checked_tags: Vec<String>,
        digest: Option<String>,
        sources: Vec<String>,
    ) -> Profile {
        Profile {
            repos,
            tags: Vec::new(),
            checked_tags,
            digest,
            class: self.class,
            image_user: self.image_user.clone(),
            user: None,
            caps_as_root: self.caps_as_root.clone(),
            caps_as_nonroot: self.caps_as_nonroot.clone(),
            low_ports: Vec::new(),
            nnp: self.nnp,
            confidence: self.confidence,
            why: self.why.clone(),
            notes: self.cannot_tell.clone(),
            sources,
        }
    }
}

use crate::dockerfile::drops_privileges;
use crate::edit::{Applicability, Edit, Fix};
use crate::editor::NewValue;
use crate::facts::{ListKey, ServiceFacts, UserState, cap_name};
use crate::knowledge::{Class, Confidence};
use crate::rules::no_new_privileges::quote_items;
use crate::rules::{Diagnostic, declare_rule, rule};

declare_rule! {
    /// ## What it does
    /// Finds services that keep Docker's 14 default capabilities, and proposes
    /// `cap_drop: [ALL]` with the **minimal** `cap_add` the service really needs.
    ///
    /// ## Why is this bad?
    /// Capabilities are root's powers cut into pieces: change any file's owner (CHOWN),
    /// ignore file permissions (DAC_OVERRIDE), become any user (SETUID, SETGID), craft raw
    /// packets (NET_RAW) and more. A compromised process keeps all of them unless they are
    /// dropped. CIS Docker Benchmark 5.4, OWASP Docker rule #3.
    ///
    /// ## Example
    /// ```yaml
    /// services:
    ///   db:
    ///     image: postgres:16
    /// ```
    ///
    /// ## Use instead
    /// ```yaml
    /// services:
    ///   db:
    ///     image: postgres:16
    ///     cap_drop:
    ///       - ALL
    ///     cap_add:
    ///       - CHOWN
    ///       - DAC_OVERRIDE
    ///       - SETGID
    ///       - SETUID
    /// ```
    /// postgres starts as root, chowns its data directory (CHOWN; DAC_OVERRIDE to walk it
    /// again on a restart) and steps down to the postgres user with gosu (SETGID, SETUID).
    ///
    /// ## Fix safety
    /// Which capabilities an image needs is a fact about its entrypoint. The fix is
    /// **verified** when it rests on that knowledge: an image in the knowledge base, a
    /// Dockerfile whose final stage is a known image or ends with a non-root `USER`, or a
    /// service that runs as a non-root user (on Docker a non-root process cannot use
    /// capabilities at all). It is **unverified** for images nothing is known about.
    /// Existing `cap_add` entries are always kept. With `network_mode: host`, a root
    /// service that listens below port 1024 also gets NET_BIND_SERVICE.
    pub struct CapDropAll;
}

/// The capabilities a service needs back after `cap_drop: [ALL]`, and how sure that is
/// (shared with CH008, which checks an existing `cap_drop: [ALL]`).
pub(crate) struct Plan {
    pub(crate) caps: Vec<String>,
    pub(crate) applicability: Applicability,
    pub(crate) confidence: Confidence,
    pub(crate) reason: String,
    pub(crate) source: Option<String>,
}

pub(crate) fn plan(f: &ServiceFacts) -> Result<Plan, String> {
    if let Some(caps) = f.overrides().and_then(|o| o.cap_add.as_ref()) {
        let mut caps: Vec<String> = caps.iter().map(|c| cap_name(c)).collect();
        caps.sort();
        caps.dedup();
        return Ok(Plan {
            caps,
            applicability: Applicability::Verified,
            confidence: Confidence::Verified,
            reason: format!(
                "cap_add for service {:?} is set in compose-harden.toml",
                f.service.name
            ),
            source: None,
        });
    }
    let profile = f.profile;
    let explicit_non_root = matches!(f.user, UserState::NonRoot(_));
    if let Some(p) = profile
        && p.class == Class::DoNotHarden
    {
        return Err(format!("not hardened automatically: {}", p.why));
    }
    if let Some(b) = &f.build
        && let Some(why) = &b.unreadable
        && !explicit_non_root
    {
        return Ok(Plan {
            caps: vec![],
            applicability: Applicability::Unverified,
            confidence: Confidence::Unverified,
            reason: format!(
                "the Dockerfile could not be read ({why}); dropping all capabilities may break it"
            ),
            source: None,
        });
    }
    let source = profile.and_then(|p| p.sources.first().cloned());
    if f.runs_non_root() == Some(true) {
        let caps = profile
            .map(|p| p.caps_as_nonroot.clone())
            .unwrap_or_default();
        let (confidence, reason) = match (&f.user, &f.build, profile) {
            (UserState::NonRoot(u), _, _) => (
                Confidence::Verified,
                format!("runs as user {u}: a non-root process cannot use capabilities on Docker"),
            ),
            (_, Some(b), _) => (
                Confidence::FromSource,
                format!(
                    "{} ends with USER {}: a non-root process cannot use capabilities on Docker",
                    b.dockerfile,
                    b.user.clone().unwrap_or_default()
                ),
            ),
            (_, None, Some(p)) => (
                p.confidence,
                format!("{} runs as {}; {}", f.image_label(), p.image_user, p.why),
            ),
            _ => (Confidence::Inferred, "runs as a non-root user".into()),
        };
        let applicability = if confidence.is_trusted() {
            Applicability::Verified
        } else {
            Applicability::Unverified
        };
        return Ok(Plan {
            caps,
            applicability,
            confidence,
            reason,
            source,
        });
    }
    if let Some(b) = &f.build
        && profile.is_none()
    {
        let reason = match (&b.drops_privileges, &b.base) {
            (Some(script), _) => format!(
                "{script} changes user or ownership at start; which capabilities it needs is not known"
            ),
            (None, Some(base)) => format!(
                "{} builds FROM {}, which is not in the knowledge base",
                b.dockerfile,
                base.display()
            ),
            (None, None) => format!("{} has no FROM we can resolve", b.dockerfile),
        };
        return Ok(Plan {
            caps: vec![],
            applicability: Applicability::Unverified,
            confidence: Confidence::Unverified,
            reason,
            source: None,
        });
    }
    let Some(p) = profile else {
        return Ok(Plan {
            caps: vec![],
            applicability: Applicability::Unverified,
            confidence: Confidence::Unverified,
            reason: format!(
                "nothing is known about {}; dropping all capabilities may break it",
                f.image_label()
            ),
            source: None,
        });
    };
    if f.settings.set_user
        && p.class == Class::RootThenDrop
        && p.user.is_some()
        && f.user == UserState::Unset
        && f.build.is_none()
    {
        return Ok(Plan {
            caps: p.caps_as_nonroot.clone(),
            applicability: Applicability::Verified,
            confidence: p.confidence,
            reason: format!(
                "--set-user runs it as {}: the entrypoint then skips its chown and user switch",
                p.user.clone().unwrap_or_default()
            ),
            source,
        });
    }
    let mut caps = p.caps_as_root.clone();
    let mut applicability = if p.confidence.is_trusted() {
        Applicability::Verified
    } else {
        Applicability::Unverified
    };
    let mut reason = p.why.clone();
    if let Some(b) = &f.build {
        let base = b.base.as_ref().map(|i| i.display()).unwrap_or_default();
        reason = format!("{} builds FROM {base}: {reason}", b.dockerfile);
        if b.drops_privileges.is_some() && p.class != Class::RootThenDrop {
            applicability = Applicability::Unverified;
            reason.push_str("; its entrypoint script changes user or ownership too");
        }
    }
    if p.class == Class::BaseImage {
        if f.command.contains("ping") {
            caps.push("NET_RAW".into());
        }
        if drops_privileges(&f.command) {
            applicability = Applicability::Unverified;
            reason = format!(
                "{}: its command changes user or ownership, which needs capabilities we cannot pin down",
                f.image_label()
            );
        } else if f.command.trim().is_empty() {
            reason = format!(
                "{} with its default command needs no capabilities",
                f.image_label()
            );
        } else {
            reason = format!(
                "{} runs the service's own command, which neither switches user nor changes ownership",
                f.image_label()
            );
        }
    }
    if f.network_host && !p.low_ports.is_empty() && !caps.iter().any(|c| c == "NET_BIND_SERVICE") {
        caps.push("NET_BIND_SERVICE".into());
        reason.push_str("; host networking and ports below 1024 need NET_BIND_SERVICE");
    }
    caps.sort();
    caps.dedup();
    Ok(Plan {
        caps,
        applicability,
        confidence: p.confidence,
        reason,
        source,
    })
}

pub fn check(f: &ServiceFacts) -> Option<Diagnostic> {
    let rule = rule("CH003");
    if f.privileged {
        return None;
    }
    let drop = f.list("cap_drop");
    let add = f.list("cap_add");
    if f.items("cap_drop").iter().any(|c| cap_name(c) == "ALL") {
        return None;
    }
    let mut d = rule.diagnostic(
        f,
        format!("{} runs with all default capabilities", f.name()),
    );
    if f.items("cap_add").iter().any(|c| cap_name(c) == "ALL") {
        d.reason =
            "cap_add: ALL grants every capability; dropping ALL would not change that".into();
        return Some(d);
    }
    if f.docker_socket.is_some() {
        d.reason = "not hardened automatically: it mounts the Docker socket, which is root on the host anyway (CH006)".into();
        return Some(d);
    }
    let plan = match plan(f) {
        Ok(p) => p,
        Err(reason) => {
            d.reason = reason.into();
            return Some(d);
        }
    };
    d.confidence = plan.confidence;
    d.source = plan.source.map(crate::rules::SharedStr::from);
    d.reason = plan.reason.into();
    let existing: Vec<String> = f.items("cap_add").iter().map(|c| cap_name(c)).collect();
    let needed: Vec<String> = plan
        .caps
        .iter()
        .filter(|c| !existing.contains(c))
        .cloned()
        .collect();
    let extra: Vec<&String> = existing.iter().filter(|c| !plan.caps.contains(c)).collect();
    if !extra.is_empty() {
        d.extend_reason(&format!(
            "; existing cap_add kept: {}",
            extra
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if f.service.is_alias {
        d.extend_reason("; not fixed: the service is an alias of another node");
        return Some(d);
    }
    let map = f.service.map;
    let ed = &f.editor;
    let all = vec!["ALL".to_string()];
    let drop_edit: Option<Edit> = match &drop {
        ListKey::Absent => ed.add_key(map, "cap_drop", &NewValue::List(all.clone())),
        ListKey::Local { seq, .. } => ed.append_items(*seq, &all),
        ListKey::Null { key } => ed.fill_null(*key, &all),
        ListKey::Merged { items } => {
            let mut v = items.clone();
            v.push("ALL".into());
            ed.add_key(map, "cap_drop", &NewValue::List(quote_items(f, &v)))
        }
        ListKey::Other => None,
    };
    let add_edit: Option<Option<Edit>> = if needed.is_empty() {
        Some(None)
    } else {
        match &add {
            ListKey::Absent => ed
                .add_key(map, "cap_add", &NewValue::List(needed.clone()))
                .map(Some),
            ListKey::Local { seq, .. } => ed.append_items(*seq, &needed).map(Some),
            ListKey::Null { key } => ed.fill_null(*key, &needed).map(Some),
            ListKey::Merged { items } => {
                let mut v = items.clone();
                v.extend(needed.iter().cloned());
                ed.add_key(map, "cap_add", &NewValue::List(quote_items(f, &v)))
                    .map(Some)
            }
            ListKey::Other => None,
        }
    };
    let (Some(drop_edit), Some(add_edit)) = (drop_edit, add_edit) else {
        return Some(d);
    };
    let mut edits = vec![drop_edit];
    edits.extend(add_edit);
    d.fix_title = Some(if plan.caps.is_empty() {
        "add cap_drop: [ALL]".into()
    } else {
        format!("add cap_drop: [ALL], cap_add: [{}]", plan.caps.join(", ")).into()
    });
    d.fix = Some(Fix::new(plan.applicability, edits));
    Some(d)
}

use crate::dockerfile::drops_privileges;
use crate::edit::{Applicability, Edit, Fix};
use crate::editor::NewValue;
use crate::facts::{ListKey, ServiceFacts, UserState, cap_name};
use crate::knowledge::{Class, Confidence};
use crate::rules::no_new_privileges::quote_items;
use crate::rules::{Diagnostic, Evidence, declare_rule, rule};

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
    /// **verified** only on evidence about this service as the file runs it: a
    /// knowledge-base row matching the image and a tag it was checked for, or a Dockerfile
    /// whose final stage is a known image, or ends with a non-root `USER` and installs no
    /// sudo, file capability or setuid bit. A non-root `user:` alone is not enough: setuid
    /// helpers and file capabilities need capabilities as non-root. The file beats the
    /// profile: `user: root` adds DAC_OVERRIDE (the image's user owns its files), an
    /// overridden `entrypoint:` drops the CHOWN/SETGID/SETUID of the image's own steps. A
    /// root service with host bind mounts that another user may own gets DAC_OVERRIDE
    /// (never DAC_READ_SEARCH). A root-then-drop image with data only in named volumes
    /// runs as its own user (CH001) and needs nothing back. It is **unverified** for
    /// images nothing is known about. Existing `cap_add` entries are always kept. With
    /// `network_mode: host`, a root service that listens below port 1024 also gets
    /// NET_BIND_SERVICE.
    pub struct CapDropAll;
}

/// The capabilities a service needs back after `cap_drop: [ALL]`, and how sure that is
/// (shared with CH008, which checks an existing `cap_drop: [ALL]`).
pub(crate) struct Plan {
    pub(crate) evidence: Evidence,
    pub(crate) caps: Vec<String>,
    pub(crate) applicability: Applicability,
    pub(crate) confidence: Confidence,
    pub(crate) reason: String,
    pub(crate) source: Option<String>,
}

impl Plan {
    fn new(caps: Vec<String>, confidence: Confidence, reason: String) -> Plan {
        let applicability = if confidence.is_trusted() {
            Applicability::Verified
        } else {
            Applicability::Unverified
        };
        Plan {
            evidence: Evidence::Generic,
            caps,
            applicability,
            confidence,
            reason,
            source: None,
        }
    }

    fn unverified(reason: String) -> Plan {
        Plan::new(vec![], Confidence::Unverified, reason)
    }

    fn sourced(mut self, f: &ServiceFacts) -> Plan {
        self.source = f.profile.and_then(|p| p.sources.first().cloned());
        self.evidence = Evidence::Profile;
        self
    }

    fn from(mut self, evidence: Evidence) -> Plan {
        self.evidence = evidence;
        self
    }
}

pub(crate) fn plan(f: &ServiceFacts) -> Result<Plan, String> {
    if let Some(caps) = f.overrides().and_then(|o| o.cap_add.as_ref()) {
        let mut caps: Vec<String> = caps.iter().map(|c| cap_name(c)).collect();
        caps.sort();
        caps.dedup();
        let reason = format!(
            "cap_add for service {:?} is set in compose-harden.toml",
            f.service.name
        );
        return Ok(Plan::new(caps, Confidence::Verified, reason).from(Evidence::Config));
    }
    if let Some(why) = &f.extends_problem {
        return Ok(Plan::unverified(format!(
            "{why}: what the base service sets (privileged, pid: host, the Docker socket) is unknown"
        )));
    }
    let explicit_non_root = matches!(f.user, UserState::NonRoot(_));
    if let Some(p) = f.profile
        && p.class == Class::DoNotHarden
    {
        return Err(format!("not hardened automatically: {}", p.why));
    }
    if let Some(b) = &f.build
        && let Some(why) = &b.unreadable
        && !explicit_non_root
    {
        return Ok(Plan::unverified(format!(
            "the Dockerfile could not be read ({why}); dropping all capabilities may break it"
        )));
    }
    let mut plan = if f.runs_non_root() == Some(true) {
        non_root(f)
    } else if let Some(u) = f.own_user() {
        own_user(f, &u)
    } else {
        match as_root(f) {
            Some(p) => root_extras(f, p),
            None => return Ok(unknown_root(f)),
        }
    };
    if let Some(note) = &f.tag_note
        && f.profile.is_some()
        && f.overrides().is_none()
    {
        plan.reason
            .push_str(&format!("; not verified for this tag: {note}"));
    }
    if let Some(note) = &f.env_note {
        plan.reason.push_str(&format!("; {note}"));
    }
    // DAC_READ_SEARCH is not in Docker's default set and enables open_by_handle_at(2);
    // DAC_OVERRIDE covers what a reader needs.
    for c in plan.caps.iter_mut() {
        if c == "DAC_READ_SEARCH" {
            *c = "DAC_OVERRIDE".into();
        }
    }
    plan.caps.sort();
    plan.caps.dedup();
    Ok(plan)
}

/// A service whose process runs as a non-root user: what backs the claim that it needs
/// no capability (beyond the profile's `caps_as_nonroot`).
fn non_root(f: &ServiceFacts) -> Plan {
    let shown_user = match &f.user {
        UserState::NonRoot(u) => Some(u.clone()),
        _ => None,
    };
    if let Some(b) = &f.build
        && b.unreadable.is_none()
    {
        let user = shown_user
            .map(|u| format!("runs as user {u}"))
            .unwrap_or_else(|| {
                format!(
                    "{} ends with USER {}",
                    b.dockerfile,
                    b.user.clone().unwrap_or_default()
                )
            });
        return match &b.gains_privileges {
            Some(line) => Plan::unverified(format!(
                "{user}, but {} has `{line}`: a non-root process may need a capability it grants",
                b.dockerfile
            ))
            .from(Evidence::Dockerfile),
            None => Plan::new(
                vec![],
                Confidence::FromSource,
                format!(
                    "{user}, and no RUN line of {} installs sudo, a file capability or a setuid bit",
                    b.dockerfile
                ),
            )
            .from(Evidence::Dockerfile),
        };
    }
    match (f.profile, shown_user) {
        (Some(p), Some(u)) => Plan::new(
            p.caps_as_nonroot.clone(),
            f.profile_confidence,
            format!(
                "runs as user {u}; as non-root {} needs {}",
                f.image_label(),
                caps_text(&p.caps_as_nonroot)
            ),
        )
        .sourced(f),
        (Some(p), None) => Plan::new(
            p.caps_as_nonroot.clone(),
            f.profile_confidence,
            format!("{} runs as {}; {}", f.image_label(), p.image_user, p.why),
        )
        .sourced(f),
        (None, Some(u)) => Plan::unverified(format!(
            "runs as user {u}, but nothing is known about {}: a setuid helper or file capability it uses would stop working",
            f.image_label()
        )),
        (None, None) => {
            Plan::unverified("runs as a non-root user nothing more is known about".into())
        }
    }
}

fn caps_text(caps: &[String]) -> String {
    if caps.is_empty() {
        "no capability".into()
    } else {
        caps.join(", ")
    }
}

/// A root-then-drop image run as its own non-root uid:gid (see [`ServiceFacts::own_user`]).
fn own_user(f: &ServiceFacts, u: &str) -> Plan {
    let p = f.profile.expect("own_user needs a profile");
    let how = if f.settings.set_user {
        "--set-user runs it"
    } else {
        "its data is only in named volumes (or none), so it runs"
    };
    Plan::new(
        p.caps_as_nonroot.clone(),
        f.profile_confidence,
        format!(
            "{how} as the image's own user {u} (CH001): the entrypoint then skips its chown and user switch and needs {}",
            caps_text(&p.caps_as_nonroot)
        ),
    )
    .sourced(f)
}

/// A root process on an image nothing is known about.
fn unknown_root(f: &ServiceFacts) -> Plan {
    let Some(b) = &f.build else {
        return Plan::unverified(format!(
            "nothing is known about {}; dropping all capabilities may break it",
            f.image_label()
        ));
    };
    Plan::unverified(match (&b.drops_privileges, &b.base) {
        (Some(script), _) => format!(
            "{script} changes user or ownership at start; which capabilities it needs is not known"
        ),
        (None, Some(base)) => format!(
            "{} builds FROM {}, which is not in the knowledge base",
            b.dockerfile,
            base.display()
        ),
        (None, None) => format!("{} has no FROM we can resolve", b.dockerfile),
    })
}

/// What a known image needs when its process starts as root. `None` when nothing is known.
fn as_root(f: &ServiceFacts) -> Option<Plan> {
    let p = f.profile?;
    let label = f.image_label();
    let mut plan =
        Plan::new(p.caps_as_root.clone(), f.profile_confidence, p.why.clone()).sourced(f);
    if p.class == Class::RootThenDrop && f.entrypoint_overridden {
        // The image's entrypoint (its chown and gosu) does not run; the file's does.
        plan.caps
            .retain(|c| !["CHOWN", "SETGID", "SETUID"].contains(&c.as_str()));
        plan.caps.push("DAC_OVERRIDE".into());
        plan.confidence = plan.confidence.min(Confidence::Inferred);
        plan.source = None;
        plan.reason = format!(
            "entrypoint: replaces the entrypoint of {label}, so its ownership changes and user switch do not run: the process stays root (CH001) and needs DAC_OVERRIDE for files the image's user {} owns",
            p.image_user
        );
        if drops_privileges(&f.command) {
            plan.applicability = Applicability::Unverified;
            plan.reason.push_str("; the file's own entrypoint changes user or ownership, which needs capabilities we cannot pin down");
        }
        return Some(plan);
    }
    if let UserState::Root(u) = &f.user
        && matches!(p.class, Class::NonRoot | Class::RootThenDrop)
    {
        plan.caps.push("DAC_OVERRIDE".into());
        plan.confidence = plan.confidence.min(Confidence::Inferred);
        let prefix = format!(
            "user: {u} overrides the image's user {}: as root it needs DAC_OVERRIDE to write the files that user owns",
            p.image_user
        );
        plan.reason = if p.class == Class::RootThenDrop {
            format!("{prefix}; {}", p.why)
        } else {
            plan.source = None;
            prefix
        };
        return Some(plan);
    }
    if let Some(b) = &f.build {
        let base = b.base.as_ref().map(|i| i.display()).unwrap_or_default();
        plan.reason = format!("{} builds FROM {base}: {}", b.dockerfile, plan.reason);
        if b.drops_privileges.is_some() && p.class != Class::RootThenDrop {
            plan.applicability = Applicability::Unverified;
            plan.reason
                .push_str("; its entrypoint script changes user or ownership too");
        }
    }
    if p.class == Class::BaseImage {
        base_image(f, &mut plan);
    }
    Some(plan)
}

fn base_image(f: &ServiceFacts, plan: &mut Plan) {
    let label = f.image_label();
    let mut text = f.command.clone();
    if let Some(h) = f.healthcheck() {
        text.push_str(&h);
    }
    if text.contains("ping") {
        plan.caps.push("NET_RAW".into());
    }
    plan.reason = if drops_privileges(&f.command) {
        plan.applicability = Applicability::Unverified;
        format!(
            "{label}: its command changes user or ownership, which needs capabilities we cannot pin down"
        )
    } else if f.command.trim().is_empty() {
        format!("{label} with its default command needs no capabilities")
    } else {
        format!(
            "{label} runs the service's own command, which neither switches user nor changes ownership"
        )
    };
    if plan.caps.iter().any(|c| c == "NET_RAW") {
        plan.reason
            .push_str("; ping (in its command or healthcheck) needs NET_RAW");
    }
}

/// What a root process needs beyond its image: DAC_OVERRIDE for host paths another user
/// may own, NET_BIND_SERVICE for low ports on the host network.
fn root_extras(f: &ServiceFacts, mut plan: Plan) -> Plan {
    if let Some(host) = f.host_binds.first()
        && !plan.caps.iter().any(|c| c == "DAC_OVERRIDE")
    {
        plan.caps.push("DAC_OVERRIDE".into());
        plan.reason.push_str(&format!(
            "; it starts as root and bind-mounts {host} from the host, which another user may own: DAC_OVERRIDE"
        ));
    }
    if let Some(p) = f.profile
        && p.class == Class::RootThenDrop
        && p.user.is_some()
        && f.user == UserState::Unset
        && f.bind_mounts
        && !f.entrypoint_overridden
    {
        plan.reason.push_str(&format!(
            "; kept as root because of its bind mounts: a host directory must be owned by {} before it can run as that user",
            p.user.clone().unwrap_or_default()
        ));
    }
    if f.network_host
        && f.profile.is_some_and(|p| !p.low_ports.is_empty())
        && !plan.caps.iter().any(|c| c == "NET_BIND_SERVICE")
    {
        plan.caps.push("NET_BIND_SERVICE".into());
        plan.reason
            .push_str("; host networking and ports below 1024 need NET_BIND_SERVICE");
    }
    plan
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
    d.evidence = plan.evidence;
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

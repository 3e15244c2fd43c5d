use crate::edit::{Applicability, Fix};
use crate::editor::NewValue;
use crate::facts::{ServiceFacts, UserState};
use crate::knowledge::{Class, Confidence};
use crate::rules::{Diagnostic, Evidence, declare_rule, rule};

declare_rule! {
    /// ## What it does
    /// Finds services whose main process runs as root for its whole life: no `user:` key,
    /// an image that does not switch to another user by itself, or an explicit `user: root`.
    ///
    /// ## Why is this bad?
    /// Root in a container is root on the host's kernel. A process that escapes the
    /// container, or writes to a bind mount, does so as uid 0. Images whose entrypoint
    /// steps down to a service user (postgres, redis, mysql …) and daemons that start
    /// unprivileged workers (nginx, httpd) are not flagged: they already drop root.
    ///
    /// ## Example
    /// ```yaml
    /// services:
    ///   worker:
    ///     image: ghcr.io/acme/worker:1.4
    /// ```
    ///
    /// ## Use instead
    /// ```yaml
    /// services:
    ///   worker:
    ///     image: ghcr.io/acme/worker:1.4
    ///     user: "10001:10001"
    /// ```
    ///
    /// ## Fix safety
    /// The fix writes a quoted numeric `"uid:gid"` (a name must exist in the image, a
    /// bare uid runs with gid 0). A root-then-drop image (postgres, redis, mariadb …)
    /// whose data lives only in named volumes (or none) gets its own uid:gid as a
    /// **verified** fix: its entrypoint then skips the chown and user switch and needs no
    /// capability. With host bind mounts it stays root (the host directory must be owned
    /// by that uid first), unless `--set-user` asks for it. Elsewhere the fix is
    /// **unverified**: the process must be able to write every path it writes today,
    /// which a static check cannot know. No user is proposed for a service that adds
    /// capabilities or may bind low ports on the host network: as non-root they are dead.
    pub struct NonRootUser;
}

pub fn check(f: &ServiceFacts) -> Option<Diagnostic> {
    let rule = rule("CH001");
    if f.privileged || f.docker_socket.is_some() {
        return None;
    }
    match &f.user {
        UserState::NonRoot(_) | UserState::Unknown(_) => return None,
        UserState::Root(u) => {
            let mut d = rule.diagnostic(f, format!("{} runs as root (`user: {u}`)", f.name()));
            d.reason =
                "an explicit root user is a decision the compose file made; change it by hand"
                    .into();
            return Some(d);
        }
        UserState::Unset => {}
    }
    if f.runs_non_root() == Some(true) {
        return None;
    }
    let (user, applicability, confidence, reason, source) = match decide(f)? {
        Ok(c) => c,
        Err(reason) => {
            let mut d = rule.diagnostic(f, format!("{} runs as root", f.name()));
            d.reason = reason.into();
            d.confidence = Confidence::Verified;
            return Some(d);
        }
    };
    let mut d = rule.diagnostic(f, format!("{} runs as root", f.name()));
    d.evidence = if f.overrides().and_then(|o| o.user.as_ref()).is_some() {
        Evidence::Config
    } else if source.is_some() {
        Evidence::Profile
    } else {
        Evidence::Generic
    };
    d.reason = reason.into();
    d.confidence = confidence;
    d.source = source.map(crate::rules::SharedStr::from);
    if f.service.is_alias {
        d.extend_reason("; not fixed: the service is an alias of another node");
        return Some(d);
    }
    let value = NewValue::Scalar(f.editor.quoted(&user));
    if let Some(edit) = f.editor.add_key(f.service.map, "user", &value) {
        d.fix_title = Some(format!("add user: \"{user}\"").into());
        d.fix = Some(Fix::new(applicability, vec![edit]));
    }
    Some(d)
}

type Decision = (String, Applicability, Confidence, String, Option<String>);

/// The user to propose: `None` when the service already drops root by itself,
/// `Some(Err(why))` when no user may be proposed.
fn decide(f: &ServiceFacts) -> Option<Result<Decision, String>> {
    if let Some(u) = f.overrides().and_then(|o| o.user.clone()) {
        let why = format!(
            "user for service {:?} is set in compose-harden.toml",
            f.service.name
        );
        return Some(Ok((
            u,
            Applicability::Verified,
            Confidence::Verified,
            why,
            None,
        )));
    }
    if let Some(u) = f.own_user() {
        let p = f.profile?;
        let why = if f.settings.set_user {
            format!(
                "--set-user: run as the image's own user {u}; volumes must be owned by {u} first"
            )
        } else {
            format!(
                "{} can run as its own user {u}: its data is only in named volumes (or none), which the entrypoint leaves owned by {u}, so no capability is needed",
                f.image_label()
            )
        };
        let appl = if f.profile_confidence.is_trusted() {
            Applicability::Verified
        } else {
            Applicability::Unverified
        };
        return Some(Ok((
            u,
            appl,
            f.profile_confidence,
            why,
            p.sources.first().cloned(),
        )));
    }
    if f.image_drops_root() {
        return None;
    }
    if let Some(b) = &f.build
        && b.drops_privileges.is_some()
    {
        return None;
    }
    if let Some(why) = no_user_possible(f) {
        return Some(Err(why));
    }
    let unverified = |u: String, why: String, src: Option<String>| {
        Some(Ok((
            u,
            Applicability::Unverified,
            Confidence::Unverified,
            why,
            src,
        )))
    };
    let label = f.image_label();
    match f.profile {
        Some(p) if p.class == Class::RootThenDrop => unverified(
            p.user
                .clone()
                .unwrap_or_else(|| f.settings.default_user.clone()),
            format!(
                "entrypoint: replaces the entrypoint of {label}, which would step down from root; the process stays root"
            ),
            None,
        ),
        Some(p) if matches!(p.class, Class::RootNoDrop | Class::BaseImage) => unverified(
            p.user
                .clone()
                .unwrap_or_else(|| f.settings.default_user.clone()),
            format!("{label} runs as root and never drops it; {}", p.why),
            p.sources.first().cloned(),
        ),
        Some(_) => None,
        None => unverified(
            f.settings.default_user.clone(),
            format!(
                "nothing is known about {label}; the default user may lack write access it needs"
            ),
            None,
        ),
    }
}

/// Why no non-root user can be proposed at all: the capabilities the file adds would be
/// dead for a non-root process, and so would binding a low port on the host network.
fn no_user_possible(f: &ServiceFacts) -> Option<String> {
    let added = f.items("cap_add");
    if !added.is_empty() {
        return Some(format!(
            "it adds capabilities ({}), which a non-root process cannot use: it must stay root",
            added.join(", ")
        ));
    }
    if f.network_host && f.profile.is_none_or(|p| !p.low_ports.is_empty()) {
        return Some(
            "it is on the host network and may bind ports below 1024, which a non-root process cannot: it must stay root"
                .into(),
        );
    }
    None
}

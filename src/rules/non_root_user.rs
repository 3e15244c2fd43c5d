use crate::edit::{Applicability, Fix};
use crate::editor::NewValue;
use crate::facts::{ServiceFacts, UserState};
use crate::knowledge::{Class, Confidence};
use crate::rules::{Diagnostic, declare_rule, rule};

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
    /// bare uid runs with gid 0). It is **unverified**: the process must be able to write
    /// every path it writes today, which a static check cannot know. For images in the
    /// knowledge base the image's own service uid:gid is used. With `--set-user`,
    /// root-then-drop images get their own uid:gid and no `cap_add`; volumes must then be
    /// owned by that uid first.
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
    let configured = f.overrides().and_then(|o| o.user.clone()).map(|u| {
        (
            u,
            Applicability::Verified,
            Confidence::Verified,
            format!(
                "user for service {:?} is set in compose-harden.toml",
                f.service.name
            ),
            None,
        )
    });
    let (user, applicability, confidence, reason, source) = if let Some(c) = configured {
        c
    } else {
        match (f.profile, &f.build) {
            (Some(p), None) if f.settings.set_user && p.class == Class::RootThenDrop => {
                let u = p.user.clone()?;
                (
                    u.clone(),
                    Applicability::Verified,
                    p.confidence,
                    format!(
                        "--set-user: run as the image's own user {u}; volumes must be owned by {u} first"
                    ),
                    p.sources.first().cloned(),
                )
            }
            (_, Some(b)) if b.drops_privileges.is_some() => return None,
            (Some(p), _) => match p.class {
                Class::RootNoDrop | Class::BaseImage => (
                    p.user
                        .clone()
                        .unwrap_or_else(|| f.settings.default_user.clone()),
                    Applicability::Unverified,
                    Confidence::Unverified,
                    format!(
                        "{} runs as root and never drops it; {}",
                        f.image_label(),
                        p.why
                    ),
                    p.sources.first().cloned(),
                ),
                _ => return None,
            },
            _ => (
                f.settings.default_user.clone(),
                Applicability::Unverified,
                Confidence::Unverified,
                format!(
                    "nothing is known about {}; the default user may lack write access it needs",
                    f.image_label()
                ),
                None,
            ),
        }
    };
    let mut d = rule.diagnostic(f, format!("{} runs as root", f.name()));
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

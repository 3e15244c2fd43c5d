use crate::edit::{Applicability, Fix};
use crate::editor::NewValue;
use crate::facts::ServiceFacts;
use crate::knowledge::Confidence;
use crate::rules::{Diagnostic, declare_rule, rule};

declare_rule! {
    /// ## What it does
    /// Checks `userns_mode` against what the service needs. On Docker only
    /// `userns_mode: host` means anything: it opts the container out of the daemon's
    /// user-namespace remapping (`userns-remap`).
    ///
    /// - A service that sets `userns_mode: host` without needing it loses the remapping:
    ///   its root is the host's root again. The fix removes the line.
    /// - With `--userns-remap` (your daemon remaps users), a service that is `privileged`,
    ///   or uses `network_mode: host` or `pid: host`, is refused by the daemon unless it
    ///   sets `userns_mode: "host"`. The fix adds it.
    ///
    /// ## Why is this bad?
    /// User-namespace remapping turns root in the container into an unprivileged uid on
    /// the host (CIS Docker Benchmark 5.31). Turning it off for no reason throws that away;
    /// not turning it off where the daemon requires it stops the service from starting.
    ///
    /// ## Example
    /// ```yaml
    /// services:
    ///   web:
    ///     image: nginx:1.27
    ///     userns_mode: host
    /// ```
    ///
    /// ## Use instead
    /// ```yaml
    /// services:
    ///   web:
    ///     image: nginx:1.27
    /// ```
    ///
    /// ## Fix safety
    /// A root service that adds capabilities keeps `host`: remapping would confine them to
    /// the user namespace. Removing a needless `host` is **verified** when the service has no bind mounts;
    /// with bind mounts it is **unverified**, because remapped ids change who owns the
    /// files the service writes there. Adding `"host"` under `--userns-remap` is verified:
    /// the daemon refuses the container without it.
    pub struct UsernsMode;
}

pub fn check(f: &ServiceFacts) -> Option<Diagnostic> {
    let rule = rule("CH004");
    let tree = &f.doc.tree;
    let needs_host = f.privileged || f.network_host || f.pid_host;
    let current = tree.lookup(f.service.map, "userns_mode");
    let effective = f.value("userns_mode");
    let value = effective.as_deref();
    let why_host = if f.privileged {
        "privileged"
    } else if f.network_host {
        "network_mode: host"
    } else {
        "pid: host"
    };
    // Under remapping, capabilities the file adds to a root process (SYS_ADMIN, NET_ADMIN)
    // are confined to the user namespace and stop working: `host` is what keeps them.
    let adds_caps = f.runs_non_root() != Some(true) && !f.items("cap_add").is_empty();
    if value == Some("host") && !needs_host && !adds_caps {
        let Some((k, _, local)) = current else {
            let mut d = rule.diagnostic(f, format!("{} turns off user-namespace remapping (`userns_mode: host`) without needing to", f.name()));
            d.reason = "set in another file of the project; remove it there".into();
            return Some(d);
        };
        let mut d = rule.diagnostic(
            f,
            format!(
                "{} turns off user-namespace remapping (`userns_mode: host`) without needing to",
                f.name()
            ),
        );
        let (line, col) = f.doc.pos(k);
        (d.line, d.column, d.offset) = (line, col, tree.node(k).start());
        d.confidence = Confidence::Verified;
        if !local {
            d.reason = "inherited through a merge key; remove it where it is defined".into();
            return Some(d);
        }
        let applicability = if f.bind_mounts {
            d.reason = "it is neither privileged nor on the host network or pid namespace; it has bind mounts, whose file ownership changes under remapping".into();
            Applicability::Unverified
        } else {
            d.reason = "it is neither privileged nor on the host network or pid namespace".into();
            Applicability::Verified
        };
        let index = tree
            .entries(f.service.map)
            .iter()
            .position(|(key, _)| key == k)?;
        if let Some(edit) = f.editor.remove_entry(f.service.map, index) {
            d.fix_title = Some("remove userns_mode: host".into());
            d.fix = Some(Fix::new(applicability, vec![edit]));
        }
        return Some(d);
    }
    if f.settings.userns_remap && needs_host && value != Some("host") {
        let mut d = rule.diagnostic(f, format!("{} is {why_host}, which a daemon with userns-remap refuses without `userns_mode: \"host\"`", f.name()));
        d.reason =
            format!("--userns-remap: the daemon cannot remap users for a {why_host} container")
                .into();
        d.confidence = Confidence::Verified;
        d.source = Some("moby daemon/daemon_unix.go verifyPlatformContainerSettings".into());
        if effective.is_some() || f.service.is_alias {
            d.extend_reason("; not fixed: userns_mode already has another value");
            return Some(d);
        }
        let value = NewValue::Scalar(f.editor.quoted_if_file_quotes("host"));
        if let Some(edit) = f.editor.add_key(f.service.map, "userns_mode", &value) {
            d.fix_title = Some("add userns_mode: \"host\"".into());
            d.fix = Some(Fix::new(Applicability::Verified, vec![edit]));
        }
        return Some(d);
    }
    None
}

use crate::edit::Fix;
use crate::editor::NewValue;
use crate::facts::{ListKey, ServiceFacts, cap_name};
use crate::rules::cap_drop_all::plan;
use crate::rules::no_new_privileges::quote_items;
use crate::rules::{Diagnostic, SharedStr, declare_rule, rule};

declare_rule! {
    /// ## What it does
    /// Finds services that already drop all capabilities (`cap_drop: [ALL]`) but whose
    /// `cap_add` lacks capabilities the image is known to need, and adds the missing ones.
    ///
    /// ## Why is this bad?
    /// A hardened file that starves its image does not start: postgres with
    /// `cap_drop: [ALL]` and no `cap_add` stops at `chown: changing ownership of
    /// '/var/lib/postgresql/data': Operation not permitted`, or fails later, on its first
    /// restart, when it can no longer walk its 0700 data directory.
    ///
    /// ## Example
    /// ```yaml
    /// services:
    ///   db:
    ///     image: postgres:16
    ///     cap_drop: [ALL]
    /// ```
    ///
    /// ## Use instead
    /// ```yaml
    /// services:
    ///   db:
    ///     image: postgres:16
    ///     cap_drop: [ALL]
    ///     cap_add: [CHOWN, DAC_OVERRIDE, SETGID, SETUID]
    /// ```
    ///
    /// ## Fix safety
    /// The missing capabilities come from the same knowledge CH003 uses (the image's
    /// profile, its Dockerfile, the service's `user:`, or `cap_add` set for the service in
    /// compose-harden.toml). The fix only adds entries, never removes one. It is
    /// **verified** when that knowledge is trusted for the service's image and tag, and
    /// **unverified** otherwise. Nothing is reported for images nothing is known about,
    /// nor for a service that runs as a non-root user (it cannot use capabilities).
    pub struct StarvedCaps;
}

pub fn check(f: &ServiceFacts) -> Option<Diagnostic> {
    if f.privileged || f.docker_socket.is_some() || f.service.is_alias {
        return None;
    }
    if !f.items("cap_drop").iter().any(|c| cap_name(c) == "ALL") {
        return None;
    }
    let existing: Vec<String> = f.items("cap_add").iter().map(|c| cap_name(c)).collect();
    if existing.iter().any(|c| c == "ALL") {
        return None;
    }
    let plan = plan(f).ok()?;
    let missing: Vec<String> = plan
        .caps
        .iter()
        .filter(|c| !existing.contains(c))
        .cloned()
        .collect();
    if missing.is_empty() {
        return None;
    }
    let mut d = rule("CH008").diagnostic(
        f,
        format!(
            "{} drops all capabilities but lacks {} that {} needs",
            f.name(),
            missing.join(", "),
            f.image_label()
        ),
    );
    d.confidence = plan.confidence;
    d.source = plan.source.map(SharedStr::from);
    d.reason = plan.reason.into();
    let ed = &f.editor;
    let edit = match f.list("cap_add") {
        ListKey::Absent => ed.add_key(f.service.map, "cap_add", &NewValue::List(missing.clone())),
        ListKey::Local { seq, .. } => ed.append_items(seq, &missing),
        ListKey::Null { key } => ed.fill_null(key, &missing),
        ListKey::Merged { items } => {
            let mut v = items;
            v.extend(missing.iter().cloned());
            ed.add_key(
                f.service.map,
                "cap_add",
                &NewValue::List(quote_items(f, &v)),
            )
        }
        ListKey::Other => None,
    };
    if let Some(edit) = edit {
        d.fix_title = Some(format!("add cap_add: [{}]", missing.join(", ")).into());
        d.fix = Some(Fix::new(plan.applicability, vec![edit]));
    }
    Some(d)
}

use crate::edit::{Applicability, Fix};
use crate::editor::NewValue;
use crate::facts::{ListKey, ServiceFacts, UserState};
use crate::knowledge::{Class, Confidence};
use crate::rules::{Diagnostic, Evidence, declare_rule, rule};

declare_rule! {
    /// ## What it does
    /// Finds services without `security_opt: [no-new-privileges:true]`.
    ///
    /// ## Why is this bad?
    /// Without it, a process in the container can gain privileges it was not started
    /// with: through setuid-root binaries (`su`, `sudo`, `ping` on some images) or file
    /// capabilities. It is CIS Docker Benchmark 5.26 and OWASP Docker rule #4.
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
    ///     security_opt:
    ///       - no-new-privileges:true
    /// ```
    ///
    /// ## Fix safety
    /// **Verified** when evidence about the image says nothing in it gains privileges: its
    /// knowledge-base row (for the tag in use), or a Dockerfile whose RUN lines install no
    /// sudo, file capability or setuid bit. **Unverified** for images nothing is known
    /// about: dev containers, code-server and images with sudo, setuid helpers or file
    /// capabilities used as non-root break. Images the knowledge base says need to gain
    /// privileges are left alone. Entrypoints that step down from root (gosu, su-exec,
    /// setpriv) keep working. The
    /// spelling is exactly `no-new-privileges:true`, the one scanners look for. A service
    /// that says `no-new-privileges:false` made a choice and is left alone.
    pub struct NoNewPrivileges;
}

const ENTRY: &str = "no-new-privileges:true";

/// `Some(true)` / `Some(false)` when an entry sets no-new-privileges (the last one wins).
fn nnp_setting(items: &[String]) -> Option<bool> {
    items.iter().rev().find_map(|i| {
        let s: String = i.chars().filter(|c| !c.is_whitespace()).collect();
        let rest = s.strip_prefix("no-new-privileges")?;
        match rest {
            "" => Some(true),
            _ => {
                let v = rest.strip_prefix([':', '='])?;
                Some(matches!(
                    v.to_ascii_lowercase().as_str(),
                    "true" | "1" | "t"
                ))
            }
        }
    })
}

pub fn check(f: &ServiceFacts) -> Option<Diagnostic> {
    let rule = rule("CH002");
    if f.privileged {
        return None;
    }
    if f.profile.is_some_and(|p| !p.nnp) {
        return None;
    }
    let list = f.list("security_opt");
    if nnp_setting(&f.items("security_opt")).is_some() {
        return None;
    }
    let mut d = rule.diagnostic(
        f,
        format!(
            "{} can gain new privileges (no `no-new-privileges:true`)",
            f.name()
        ),
    );
    let (confidence, mut reason, source) = backing(f);
    d.evidence = match (f.profile, &f.build) {
        _ if confidence == Confidence::Unverified && f.profile.is_none() && f.build.is_none() => {
            Evidence::Generic
        }
        (Some(_), _) if f.extends_problem.is_none() => Evidence::Profile,
        (None, Some(b)) if b.unreadable.is_none() => Evidence::Dockerfile,
        _ if f.command.contains("sudo ") => Evidence::ComposeFile,
        _ => Evidence::Generic,
    };
    if let Some(note) = &f.env_note {
        reason.push_str(&format!("; {note}"));
    }
    d.reason = reason.into();
    d.confidence = confidence;
    d.source = source.map(|s| s.as_str().into());
    if f.service.is_alias {
        d.extend_reason("; not fixed: the service is an alias of another node");
        return Some(d);
    }
    let edit = match &list {
        ListKey::Absent => f.editor.add_key(
            f.service.map,
            "security_opt",
            &NewValue::List(vec![ENTRY.into()]),
        ),
        ListKey::Local { seq, .. } => f.editor.append_items(*seq, &[ENTRY.into()]),
        ListKey::Null { key } => f.editor.fill_null(*key, &[ENTRY.into()]),
        ListKey::Merged { items } => {
            let mut all = items.clone();
            all.push(ENTRY.into());
            f.editor.add_key(
                f.service.map,
                "security_opt",
                &NewValue::List(quote_items(f, &all)),
            )
        }
        ListKey::Other => None,
    };
    if let Some(edit) = edit {
        d.fix_title = Some(format!("add security_opt: {ENTRY}").into());
        let applicability = if confidence.is_trusted() {
            Applicability::Verified
        } else {
            Applicability::Unverified
        };
        d.fix = Some(Fix::new(applicability, vec![edit]));
    }
    Some(d)
}

/// What backs no-new-privileges for this service: the image's profile (a reason true for
/// its class), its Dockerfile, or nothing (then it is unverified: sudo, setuid helpers and
/// file capabilities used as non-root stop working).
fn backing<'a>(f: &ServiceFacts<'a>) -> (Confidence, String, Option<&'a String>) {
    let label = f.image_label();
    if let Some(why) = &f.extends_problem {
        return (
            Confidence::Unverified,
            format!("{why}: what the base service runs is unknown"),
            None,
        );
    }
    if let Some(b) = &f.build
        && b.unreadable.is_none()
        && let Some(line) = &b.gains_privileges
    {
        let why = format!(
            "{} has `{line}`, which no-new-privileges would stop working",
            b.dockerfile
        );
        return (Confidence::Unverified, why, None);
    }
    if f.command.contains("sudo ") || f.healthcheck().is_some_and(|h| h.contains("sudo ")) {
        return (
            Confidence::Unverified,
            "its command uses sudo, which no-new-privileges stops working".into(),
            None,
        );
    }
    let Some(p) = f.profile else {
        if let Some(b) = &f.build
            && b.unreadable.is_none()
            && f.runs_non_root() == Some(true)
        {
            let why = format!(
                "{} runs as non-root and no RUN line installs sudo, a file capability or a setuid bit",
                b.dockerfile
            );
            return (Confidence::FromSource, why, None);
        }
        let why = format!(
            "nothing is known about {label}: images that use sudo, setuid helpers or file capabilities as non-root break under no-new-privileges"
        );
        return (Confidence::Unverified, why, None);
    };
    let user_root = matches!(f.user, UserState::Root(_));
    let why = match p.class {
        Class::RootThenDrop if f.entrypoint_overridden => format!(
            "{label} with its entrypoint replaced runs the file's command as root, which needs no privilege it does not already have"
        ),
        Class::RootThenDrop if f.own_user().is_some() => {
            format!("{label} runs as its own user and needs to gain no privilege")
        }
        Class::RootThenDrop => format!(
            "{label}: its entrypoint starts as root and steps down (gosu, su-exec, setpriv), which no-new-privileges does not block"
        ),
        Class::SelfDroppingDaemon => format!(
            "{label}: its root master starts workers as another user itself, which no-new-privileges does not block"
        ),
        Class::NonRoot if !user_root => format!(
            "{label} runs as {} and uses no setuid helper or file capability to gain privileges",
            p.image_user
        ),
        _ => format!(
            "{label} runs as root and never changes user; it needs no privilege it does not already have"
        ),
    };
    let mut why = why;
    if let Some(note) = &f.tag_note {
        why.push_str(&format!("; not verified for this tag: {note}"));
    }
    let source = if f.entrypoint_overridden || (user_root && p.class == Class::NonRoot) {
        None
    } else {
        p.sources.first()
    };
    (f.profile_confidence, why, source)
}

/// Inherited entries copied into a new local list keep their meaning: quote any that
/// would not read back as the same plain string.
pub fn quote_items(f: &ServiceFacts, items: &[String]) -> Vec<String> {
    items
        .iter()
        .map(|i| {
            let plain_ok = !i.is_empty()
                && i.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.:=/".contains(c))
                && !i.ends_with(':')
                && i.parse::<f64>().is_err()
                && !matches!(
                    i.to_ascii_lowercase().as_str(),
                    "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n" | "~"
                );
            if plain_ok {
                i.clone()
            } else {
                f.editor.quoted(i)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::nnp_setting;

    #[test]
    fn reads_every_spelling_and_the_last_wins() {
        let v = |xs: &[&str]| nnp_setting(&xs.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(v(&["no-new-privileges"]), Some(true));
        assert_eq!(v(&["no-new-privileges=true"]), Some(true));
        assert_eq!(v(&["no-new-privileges: true"]), Some(true));
        assert_eq!(v(&["no-new-privileges:false"]), Some(false));
        assert_eq!(
            v(&["no-new-privileges:true", "no-new-privileges:false"]),
            Some(false)
        );
        assert_eq!(v(&["seccomp:unconfined"]), None);
    }
}

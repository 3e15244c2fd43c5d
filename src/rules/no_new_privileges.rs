use crate::edit::{Applicability, Fix};
use crate::editor::NewValue;
use crate::facts::{ListKey, ServiceFacts};
use crate::knowledge::Confidence;
use crate::rules::{Diagnostic, declare_rule, rule};

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
    /// **Verified** for every image unless the knowledge base says the image needs to gain
    /// privileges as a non-root user (sudo, setuid helpers, capabilities set at start).
    /// Entrypoints that step down from root (gosu, su-exec, setpriv) keep working. The
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
    match f.profile {
        Some(p) => {
            d.reason = format!(
                "{}: its entrypoint only ever steps down from root; nothing in it needs to gain privileges",
                f.image_label()
            )
            .into();
            d.confidence = p.confidence.max(Confidence::Inferred);
            d.source = p.sources.first().map(|s| s.as_str().into());
        }
        None => {
            d.reason = "no-new-privileges only blocks gaining privileges (sudo, setuid); starting as root and stepping down still works".into();
            d.confidence = Confidence::Inferred;
        }
    }
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
        d.fix = Some(Fix::new(Applicability::Verified, vec![edit]));
    }
    Some(d)
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

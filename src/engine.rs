//! Checking and fixing one file: parse, run the rules, apply the selected fixes in one
//! pass, then prove the result: it must parse, mean the same outside the hardening keys,
//! and need no further fix. Anything else is refused and the file is left as it was.

use std::path::Path;

use crate::document::{Document, InputError};
use crate::edit::{Applicability, apply};
use crate::facts::{ServiceFacts, Settings};
use crate::rules::{Diagnostic, REGISTRY};
use crate::yaml::Limits;

/// The keys fixes may add, extend or remove.
pub const HARDENING_KEYS: &[&str] = &["user", "cap_add", "cap_drop", "security_opt", "userns_mode"];

/// Most fix passes before we give up on a file (one is the norm).
const MAX_PASSES: usize = 4;

#[derive(Debug)]
pub enum FileError {
    /// The input is not a compose file we can read (exit 2, file untouched).
    Input(InputError),
    /// Our own fix failed its checks; nothing is written.
    Refused(String),
}

/// Per-run options for the engine.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub settings: Settings,
    pub limits: Limits,
    /// Rule ids turned off.
    pub disabled: Vec<String>,
}

/// Names of the services whose mappings `map` merges through `<<` (directly or deeper).
fn merged_services(doc: &Document, map: crate::yaml::NodeId) -> Vec<String> {
    let tree = &doc.tree;
    let mut out = Vec::new();
    let mut stack = vec![(map, 0usize)];
    while let Some((m, depth)) = stack.pop() {
        if depth > 32 {
            continue;
        }
        for &(k, v) in tree.entries(m) {
            if !tree.is_merge_key(k) {
                continue;
            }
            let v = tree.resolve(v);
            let sources: Vec<_> = if tree.is_sequence(v) {
                tree.items(v).to_vec()
            } else {
                vec![v]
            };
            for src in sources {
                let src = tree.resolve(src);
                if let Some(s) = doc.services.iter().find(|s| s.map == src) {
                    out.push(s.name.clone());
                }
                stack.push((src, depth + 1));
            }
        }
    }
    out
}

/// What checking one file found.
pub fn check(doc: &Document, opts: &Options, dir: Option<&Path>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for service in &doc.services {
        let facts = ServiceFacts::new(doc, service, &opts.settings, dir);
        for rule in REGISTRY {
            if opts
                .disabled
                .iter()
                .any(|d| d.eq_ignore_ascii_case(rule.id) || d.eq_ignore_ascii_case(rule.name))
            {
                continue;
            }
            if let Some(d) = (rule.check)(&facts) {
                out.push(d);
            }
        }
    }
    out
}

/// The outcome of fixing one file.
#[derive(Debug)]
pub struct Fixed {
    pub original: String,
    pub text: String,
    /// Findings of the first pass, with `applied[i]` telling whether diagnostic i was fixed.
    pub diagnostics: Vec<Diagnostic>,
    pub applied: Vec<bool>,
}

impl Fixed {
    pub fn changed(&self) -> bool {
        self.original != self.text
    }
}

pub fn parse(text: String, opts: &Options) -> Result<Document, FileError> {
    Document::parse(text, opts.limits).map_err(FileError::Input)
}

/// Check `text` and apply every fix at least as sure as `min`.
pub fn fix(
    text: String,
    opts: &Options,
    dir: Option<&Path>,
    min: Applicability,
) -> Result<Fixed, FileError> {
    let original = text.clone();
    let doc = parse(text, opts)?;
    let diagnostics = check(&doc, opts, dir);
    let mut applied = vec![false; diagnostics.len()];
    let wanted = |d: &Diagnostic| d.fix.as_ref().is_some_and(|f| f.applicability >= min);
    let original_skeleton = doc.skeleton(HARDENING_KEYS).map_err(FileError::Refused)?;

    let mut current = doc;
    let mut pass_diags: Vec<Diagnostic> = diagnostics.clone();
    for _ in 0..MAX_PASSES {
        let mut selected: Vec<usize> = (0..pass_diags.len())
            .filter(|&i| wanted(&pass_diags[i]))
            .collect();
        // A service that merges (`<<: *db`) another service we are about to fix waits one
        // pass: it may inherit the new keys instead of getting copies of them.
        let fixing: Vec<&str> = selected
            .iter()
            .map(|&i| pass_diags[i].service.as_str())
            .collect();
        let waits: Vec<String> = current
            .services
            .iter()
            .filter(|s| {
                merged_services(&current, s.map)
                    .iter()
                    .any(|other| *other != s.name && fixing.contains(&other.as_str()))
            })
            .map(|s| s.name.clone())
            .collect();
        if selected
            .iter()
            .any(|&i| !waits.contains(&pass_diags[i].service))
        {
            selected.retain(|&i| !waits.contains(&pass_diags[i].service));
        }
        if selected.is_empty() {
            break;
        }
        let fixes: Vec<_> = selected
            .iter()
            .map(|&i| pass_diags[i].fix.as_ref().expect("selected"))
            .collect();
        let (new_text, _) = apply(&current.text, &fixes);
        let next = Document::parse(new_text, opts.limits).map_err(|e| {
            FileError::Refused(format!(
                "the fixed file would not parse ({}:{}: {}); nothing was written",
                e.line, e.col, e.message
            ))
        })?;
        let skeleton = next.skeleton(HARDENING_KEYS).map_err(FileError::Refused)?;
        if skeleton != original_skeleton {
            return Err(FileError::Refused(
                "the fix would change more than hardening keys; nothing was written".into(),
            ));
        }
        pass_diags = check(&next, opts, dir);
        current = next;
    }
    if pass_diags.iter().any(wanted) {
        return Err(FileError::Refused(
            "the fixes did not settle (a second run would change the file again); nothing was written".into(),
        ));
    }
    // A finding is fixed when the final file no longer has it.
    for (i, d) in diagnostics.iter().enumerate() {
        applied[i] = wanted(d)
            && !pass_diags
                .iter()
                .any(|p| p.rule == d.rule && p.service == d.service);
    }
    Ok(Fixed {
        original,
        text: current.text,
        diagnostics,
        applied,
    })
}

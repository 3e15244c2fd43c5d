//! Checking and fixing one file: parse, run the rules, apply the selected fixes in one
//! pass, then prove the result: it must parse, mean the same outside the hardening keys,
//! and need no further fix. Anything else is refused and the file is left as it was.

use std::path::Path;

use crate::document::{Document, InputError};
use crate::edit::Applicability;
use crate::facts::{ServiceFacts, Settings};
use crate::rules::{Diagnostic, REGISTRY};
use crate::source::Fingerprint;
use crate::yaml::Limits;

/// The keys fixes may add, extend or remove.
pub const HARDENING_KEYS: &[&str] = &["user", "cap_add", "cap_drop", "security_opt", "userns_mode"];

/// Most fix passes before we give up on a file (one is the norm).
const MAX_PASSES: usize = 4;

/// Files with at least this many services have them checked in parallel.
const PARALLEL_SERVICES: usize = 64;
/// Services checked as one piece of work on a big file.
const RUN: usize = 128;

#[derive(Debug)]
pub enum FileError {
    /// The input is not a compose file we can read (exit 2, file untouched).
    Input(InputError),
    /// Our own fix failed its checks; nothing is written.
    Refused(String),
}

/// Per-run options for the fixer.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub settings: Settings,
    pub limits: Limits,
    /// Rule ids turned off.
    pub disabled: Vec<String>,
    /// `fix` also writes the hunks of a unified diff of each changed file
    /// ([`Fixed::hunks`]), while it still has the original text at hand.
    pub diffs: bool,
}

/// Names of the services whose mappings `map` merges through `<<` (directly or deeper).
fn merged_services(
    doc: &Document,
    map: crate::yaml::NodeId,
    service_of: &std::collections::HashMap<crate::yaml::NodeId, &str>,
) -> Vec<String> {
    let tree = &doc.tree;
    let mut out = Vec::new();
    let mut stack = vec![(map, 0usize)];
    while let Some((m, depth)) = stack.pop() {
        if depth > 32 {
            continue;
        }
        for (k, v) in tree.entries(m) {
            if !tree.is_merge_key(k) {
                continue;
            }
            let sources = tree.merge_sources(v);
            for src in sources {
                if let Some(name) = service_of.get(&src) {
                    out.push(name.to_string());
                }
                stack.push((src, depth + 1));
            }
        }
    }
    out
}

/// Keys that change what a service needs (the image and how it runs). A service that
/// merges or extends another one but sets any of these itself does not wait for the other
/// one's fix: what the other one needs may not be enough for it (a `caddy` that merges a
/// `postgres` service would inherit postgres's capabilities and miss NET_BIND_SERVICE).
const NEEDS_KEYS: &[&str] = &[
    "image",
    "build",
    "user",
    "command",
    "entrypoint",
    "privileged",
    "pid",
    "network_mode",
    "ports",
    "volumes",
];

/// Whether mapping `map` sets one of [`NEEDS_KEYS`] itself (not through a merge key).
fn sets_own_needs(doc: &Document, map: crate::yaml::NodeId) -> bool {
    let tree = &doc.tree;
    tree.entries(map).iter().any(|(k, _)| {
        !tree.is_merge_key(k) && tree.scalar(k).is_some_and(|key| NEEDS_KEYS.contains(&key))
    })
}

/// A `# compose-harden: ignore[...]` comment.
struct Suppression {
    line: usize,
    /// The comment is alone on its line (so it may also govern the line below).
    own_line: bool,
    offset: usize,
    /// Rule ids it names; `None` suppresses every rule.
    codes: Option<Vec<&'static str>>,
    /// Names that are not rules, reported as unused.
    unknown: Vec<String>,
    used: Vec<&'static str>,
}

const SUPPRESSION: &str = crate::yaml::COMMENT_DIRECTIVE;

fn suppressions(doc: &Document) -> Vec<Suppression> {
    let text = doc.text();
    let mut out = Vec::new();
    for &(start, end) in &doc.tree.comments {
        let body = text[start..end].trim_start_matches('#').trim();
        let Some(rest) = body.strip_prefix(SUPPRESSION) else {
            continue;
        };
        let rest = rest.trim();
        let Some(args) = rest.strip_prefix("ignore") else {
            continue;
        };
        let args = args.trim();
        let (mut codes, mut unknown) = (None, Vec::new());
        if let Some(list) = args.strip_prefix('[').and_then(|a| a.split(']').next()) {
            let mut ids = Vec::new();
            for c in list.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                match crate::rules::find(c) {
                    Some(r) => ids.push(r.id),
                    None => unknown.push(c.to_string()),
                }
            }
            codes = Some(ids);
        }
        let (line, _) = doc.lines.line_col(text, start);
        out.push(Suppression {
            line,
            own_line: crate::source::starts_line(text, start),
            offset: start,
            codes,
            unknown,
            used: Vec::new(),
        });
    }
    out
}

/// What checking one file found.
pub fn check(doc: &Document, opts: &Options, dir: Option<&Path>) -> Vec<Diagnostic> {
    check_project(&[doc], opts, &[dir])
        .pop()
        .unwrap_or_default()
}

/// The file of a project whose definition of `name` receives the edits: the first that
/// gives it an image or a build, else the first that names it.
fn home_of(docs: &[&Document], by_name: &Index<'_>, name: &str) -> Option<usize> {
    let defs = by_name.get(name)?;
    let (d, _) = defs
        .iter()
        .find(|(d, s)| {
            d.tree.lookup(s.map, "image").is_some() || d.tree.lookup(s.map, "build").is_some()
        })
        .or_else(|| defs.first())?;
    docs.iter().position(|x| std::ptr::eq(*x, *d))
}

/// Every service definition of a project's files, by service name, in file order.
type Index<'d> =
    std::collections::HashMap<&'d str, Vec<(&'d Document, &'d crate::document::Service)>>;

fn index<'d>(docs: &[&'d Document]) -> Index<'d> {
    let mut out: Index<'d> = std::collections::HashMap::new();
    for d in docs {
        for s in &d.services {
            out.entry(s.name.as_str()).or_default().push((*d, s));
        }
    }
    out
}

/// Every definition of service `name` across the project's files, in merge order: what it
/// `extends` (a service of the same project, named without `file:`) first, then each file's
/// own definition.
fn definitions<'d>(
    index: &Index<'d>,
    name: &str,
    depth: usize,
) -> Vec<(&'d Document, &'d crate::document::Service)> {
    let own: Vec<(&Document, &crate::document::Service)> =
        index.get(name).cloned().unwrap_or_default();
    if depth >= 8 {
        return own;
    }
    let mut base: Option<String> = None;
    for (d, s) in &own {
        let tree = &d.tree;
        let Some((_, v, _)) = tree.lookup(s.map, "extends") else {
            continue;
        };
        let target = match tree.scalar(v) {
            Some(t) => Some(t.to_string()),
            None if tree.lookup(tree.resolve(v), "file").is_none() => tree
                .lookup(tree.resolve(v), "service")
                .and_then(|(_, x, _)| tree.scalar(x).map(str::to_string)),
            None => None,
        };
        if target.is_some() {
            base = target;
        }
    }
    match base {
        Some(b) if b != name => {
            let mut all = definitions(index, &b, depth + 1);
            all.extend(own);
            all
        }
        _ => own,
    }
}

/// [`definitions`], with the bases that an `extends: {file: …}` names read from their files
/// (see [`crate::extends`]); the second value says why a base file was not read.
fn definitions_with_files<'d>(
    index: &Index<'d>,
    name: &str,
    dir: Option<&Path>,
    settings: &Settings,
) -> (
    Vec<(&'d Document, &'d crate::document::Service)>,
    Option<String>,
) {
    let mut stack = definitions(index, name, 0);
    let named = stack.iter().find_map(|(d, s)| {
        let (_, v, _) = d.tree.lookup(s.map, "extends")?;
        let (file, svc) = crate::extends::target(d, v)?;
        Some((file, svc.unwrap_or_else(|| s.name.clone())))
    });
    let Some((file, svc)) = named else {
        return (stack, None);
    };
    let root = settings.root.as_deref();
    match crate::extends::follow(dir, &file, &svc, root, settings.allow_outside) {
        Ok(base) => {
            let mut all: Vec<(&'d Document, &'d crate::document::Service)> =
                base.into_iter().collect();
            all.append(&mut stack);
            (all, None)
        }
        Err(why) => (stack, Some(why)),
    }
}

/// Check files that Compose merges into one project (`-f a.yaml -f b.yaml`): a service
/// is judged on its merged definition and reported (and fixed) in its home file.
pub fn check_project(
    docs: &[&Document],
    opts: &Options,
    dirs: &[Option<&Path>],
) -> Vec<Vec<Diagnostic>> {
    check_keeping(docs, opts, dirs, None).0
}

/// The (rule, service) of a finding, all that is kept of the findings [`check_keeping`]
/// does not keep whole.
type Seen = (&'static str, String);

/// Per file: the findings [`check_keeping`] keeps whole, and the others' rule and service.
type Kept = (Vec<Vec<Diagnostic>>, Vec<Vec<Seen>>);

/// A finding kept whole, or the rule of one that is not.
type Found = Result<Diagnostic, &'static str>;

/// [`check_project`], keeping whole only the findings `keep` picks (all when `None`); of
/// the others, only their (rule, service) in the second vector. Findings not kept whole are
/// let go as soon as they are made, so a check that is only asked what is left holds
/// little memory.
fn check_keeping(
    docs: &[&Document],
    opts: &Options,
    dirs: &[Option<&Path>],
    keep: Option<&(dyn Fn(&Diagnostic) -> bool + Sync)>,
) -> Kept {
    let by_name = index(docs);
    (0..docs.len())
        .map(|i| {
            check_one(
                docs,
                &by_name,
                i,
                opts,
                dirs.get(i).copied().flatten(),
                keep,
            )
        })
        .unzip()
}

fn check_one(
    docs: &[&Document],
    by_name: &Index<'_>,
    position: usize,
    opts: &Options,
    dir: Option<&Path>,
    keep: Option<&(dyn Fn(&Diagnostic) -> bool + Sync)>,
) -> (Vec<Diagnostic>, Vec<Seen>) {
    let doc = docs[position];
    let mut out = Vec::new();
    let mut seen: Vec<Seen> = Vec::new();
    // A finding not kept whole is let go where it is made; its rule is kept.
    let whole = |d: &Diagnostic| keep.is_none_or(|keep| keep(d));
    let shared = crate::rules::Interner::default();
    let mut sups = suppressions(doc);
    let mut attached: Vec<Option<String>> = vec![None; sups.len()];
    // What every rule finds on one service, before suppressions.
    let findings = |service: &crate::document::Service| -> Option<Vec<Found>> {
        if docs.len() > 1 && home_of(docs, by_name, &service.name) != Some(position) {
            return None;
        }
        let (stack, extends_problem) =
            definitions_with_files(by_name, &service.name, dir, &opts.settings);
        // A definition with no image, build or extends anywhere is a fragment of a project
        // (an override file checked on its own): what it runs is decided elsewhere.
        let runs_something = stack.iter().any(|(d, s)| {
            ["image", "build", "extends"]
                .iter()
                .any(|k| d.tree.lookup(s.map, k).is_some())
        });
        if !runs_something {
            return None;
        }
        let mut facts = ServiceFacts::layered(doc, service, &opts.settings, dir, stack);
        facts.extends_problem = extends_problem;
        let skip = opts
            .settings
            .overrides
            .get(&service.name)
            .map(|o| o.skip.as_slice())
            .unwrap_or(&[]);
        let off = |list: &[String], rule: &crate::rules::Rule| {
            list.iter()
                .any(|d| d.eq_ignore_ascii_case(rule.id) || d.eq_ignore_ascii_case(rule.name))
        };
        let user_rule = crate::rules::find("CH001").expect("CH001 exists");
        let key_line = doc.pos(service.key).0;
        let suppressed = sups.iter().any(|s| {
            (s.line == key_line || (s.own_line && s.line + 1 == key_line))
                && s.codes.as_ref().is_none_or(|c| c.contains(&user_rule.id))
        });
        facts.own_user_off = suppressed || off(&opts.disabled, user_rule) || off(skip, user_rule);
        Some(
            REGISTRY
                .iter()
                .filter(|rule| !off(&opts.disabled, rule) && !off(skip, rule))
                .filter_map(|rule| (rule.check)(&facts))
                .map(|mut d| {
                    if !whole(&d) {
                        return Err(d.rule);
                    }
                    shared.intern(&mut d);
                    Ok(d)
                })
                .collect::<Vec<_>>(),
        )
    };
    // The findings of a run of services: those kept whole in one buffer, with room for
    // every rule to fire on every service (room never touched costs nothing) so that it
    // never grows; the rule of every finding and whether it is kept whole; and how many
    // findings each service has (`SKIPPED`: not checked).
    const SKIPPED: u8 = u8::MAX;
    let run = |services: &[crate::document::Service]| {
        let mut diags = Vec::with_capacity(services.len() * REGISTRY.len());
        let mut rules = Vec::new();
        let counts: Vec<u8> = services
            .iter()
            .map(|s| match findings(s) {
                Some(found) => {
                    let n = found.len() as u8;
                    for f in found {
                        match f {
                            Ok(d) => {
                                rules.push((d.rule, true));
                                diags.push(d);
                            }
                            Err(rule) => rules.push((rule, false)),
                        }
                    }
                    n
                }
                None => SKIPPED,
            })
            .collect();
        (diags, rules, counts)
    };
    type Run = (Vec<Diagnostic>, Vec<(&'static str, bool)>, Vec<u8>);
    // Files with many services are checked on every core; the findings keep their order.
    let runs: Vec<Run> = if doc.services.len() >= PARALLEL_SERVICES {
        use rayon::prelude::*;
        doc.services.par_chunks(RUN).map(run).collect()
    } else {
        vec![run(&doc.services)]
    };
    out.reserve_exact(runs.iter().map(|(d, ..)| d.len()).sum::<usize>() + sups.len());
    let mut services = doc.services.iter();
    for (diags, rules, counts) in runs {
        let (mut diags, mut rules) = (diags.into_iter(), rules.into_iter());
        for (n, service) in counts.into_iter().zip(services.by_ref()) {
            if n == SKIPPED {
                continue;
            }
            let found = rules.by_ref().take(n.into());
            let key_line = doc.pos(service.key).0;
            let mine: Vec<usize> = (0..sups.len())
                .filter(|&i| {
                    sups[i].line == key_line || (sups[i].own_line && sups[i].line + 1 == key_line)
                })
                .collect();
            for &i in &mine {
                attached[i] = Some(service.name.clone());
            }
            for (rule, whole) in found {
                let d = whole.then(|| diags.next().expect("one per finding kept whole"));
                let by = mine
                    .iter()
                    .copied()
                    .find(|&i| sups[i].codes.as_ref().is_none_or(|c| c.contains(&rule)));
                match (by, d) {
                    (Some(i), _) => sups[i].used.push(rule),
                    (None, Some(d)) => out.push(d),
                    (None, None) => seen.push((rule, service.name.clone())),
                }
            }
        }
    }
    if opts
        .disabled
        .iter()
        .any(|d| d.eq_ignore_ascii_case("CH007") || d.eq_ignore_ascii_case("unused-suppression"))
    {
        return (out, seen);
    }
    for (s, service) in sups.iter().zip(attached) {
        let mut stale: Vec<String> = match &s.codes {
            None if s.used.is_empty() => vec!["every rule".into()],
            None => vec![],
            Some(c) => c
                .iter()
                .filter(|c| !s.used.contains(c))
                .map(|c| c.to_string())
                .collect(),
        };
        stale.extend(s.unknown.iter().map(|u| format!("{u} (no such rule)")));
        if stale.is_empty() {
            continue;
        }
        let (line, column) = doc.lines.line_col(doc.text(), s.offset);
        let rule = crate::rules::find("CH007").expect("registered");
        let message = match &service {
            Some(name) => format!(
                "suppression of {} on service {name:?} matches nothing",
                stale.join(", ")
            ),
            None => format!(
                "suppression of {} is not on a service line or the line above one",
                stale.join(", ")
            ),
        };
        let d = Diagnostic {
            rule: rule.id,
            rule_name: rule.name,
            service: service.unwrap_or_default(),
            offset: s.offset,
            line,
            column,
            message,
            reason: "remove the comment or name only rules that still fire".into(),
            confidence: crate::knowledge::Confidence::Verified,
            evidence: crate::rules::Evidence::ComposeFile,
            source: None,
            fix: None,
            fix_title: None,
        };
        if whole(&d) {
            out.push(d);
        } else {
            seen.push((d.rule, d.service));
        }
    }
    // Kept while other files are fixed and reported: no spare room.
    out.shrink_to_fit();
    (out, seen)
}

/// The outcome of fixing one file. The original text is not kept (a big file would be
/// held twice): what is needed of it is kept instead, its fingerprint and, when
/// [`Options::diffs`] asks, the diff.
#[derive(Debug)]
pub struct Fixed {
    /// The original text's fingerprint: the file must still match it when it is written.
    /// `None` when [`Options::diffs`] asked for a diff instead (nothing is written then).
    pub original: Option<Fingerprint>,
    pub text: String,
    /// Findings of the first pass, with `applied[i]` telling whether diagnostic i was fixed.
    pub diagnostics: Vec<Diagnostic>,
    pub applied: Vec<bool>,
    /// The hunks of a unified diff from the original to `text` (see
    /// [`crate::diff::with_header`]), when [`Options::diffs`] asked for them; empty when
    /// nothing changed.
    pub hunks: Option<String>,
    changed: bool,
}

impl Fixed {
    pub fn changed(&self) -> bool {
        self.changed
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
    fix_project(vec![(text, dir)], opts, min)
        .map(|mut v| v.pop().expect("one file in, one out"))
        .map_err(|(_, e)| e)
}

/// Fix the files of one project together. On failure, the index of the file at fault.
///
/// Each pass picks the fixes of every file from the current documents, then replaces the
/// documents one at a time: a file's tree is dropped before its edits are applied and the
/// new text is parsed, and the new document is compared with a digest of the original, so
/// at most one tree per file is alive at any moment.
pub fn fix_project(
    files: Vec<(String, Option<&Path>)>,
    opts: &Options,
    min: Applicability,
) -> Result<Vec<Fixed>, (usize, FileError)> {
    let dirs: Vec<Option<&Path>> = files.iter().map(|(_, d)| *d).collect();
    let mut current: Vec<Document> = Vec::with_capacity(files.len());
    for (i, (text, _)) in files.into_iter().enumerate() {
        current.push(parse(text, opts).map_err(|e| (i, e))?);
    }
    let wanted = |d: &Diagnostic| d.fix.as_ref().is_some_and(|f| f.applicability >= min);
    // The findings, and what each file means outside the hardening keys (every fixed text
    // must mean the same), worked out side by side.
    let size: usize = current.iter().map(|d| d.text().len()).sum();
    let (first, (digests, fingerprints)): (Vec<Vec<Diagnostic>>, (Vec<_>, Vec<_>)) =
        crate::yaml::both(
            size >= crate::yaml::PARALLEL_MIN,
            || {
                let refs: Vec<&Document> = current.iter().collect();
                check_project(&refs, opts, &dirs)
            },
            || {
                current
                    .iter()
                    .map(|d| {
                        (
                            d.digest(HARDENING_KEYS),
                            // Only a write needs it; with a diff nothing is written.
                            (!opts.diffs).then(|| Fingerprint::of(d.text().as_bytes())),
                        )
                    })
                    .unzip()
            },
        );
    let n = current.len();
    // Per file: whether it changed.
    let mut changed = vec![false; n];
    // Per file, when a diff is asked for: the edits that undo the first pass. The diff is
    // written from them and the final text at the end. When a later pass edits the file
    // again (rare), they no longer fit it: the original is rebuilt from them before that
    // pass, and the diff is searched for at the end.
    let mut undo: Vec<Option<Vec<crate::edit::Edit>>> = vec![None; n];
    let mut originals: Vec<Option<String>> = vec![None; n];
    let mut passes = vec![0usize; n];
    // The findings of the latest pass, `None` until a fix was made: whole for the fixes
    // still to make, else only their rule and service.
    let mut later: Option<Kept> = None;
    for _ in 0..MAX_PASSES {
        let pass = later.as_ref().map_or(&first, |(kept, _)| kept);
        // Per file: the findings whose fixes this pass applies.
        let mut chosen: Vec<Vec<usize>> = vec![Vec::new(); current.len()];
        {
            let refs: Vec<&Document> = current.iter().collect();
            let by_name = index(&refs);
            for (i, doc) in current.iter().enumerate() {
                let diags = &pass[i];
                let mut selected: Vec<usize> =
                    (0..diags.len()).filter(|&j| wanted(&diags[j])).collect();
                // A service that merges (`<<: *db`) another service we are about to fix waits
                // one pass: it may inherit the new keys instead of getting copies of them.
                let fixing: std::collections::HashSet<&str> = selected
                    .iter()
                    .map(|&j| diags[j].service.as_str())
                    .collect();
                // The service that owns each mapping (not a `web2: *web` alias of it).
                let mut service_of: std::collections::HashMap<crate::yaml::NodeId, &str> =
                    std::collections::HashMap::new();
                for s in doc.services.iter().filter(|s| !s.is_alias) {
                    service_of.entry(s.map).or_insert(s.name.as_str());
                }
                let waits: std::collections::HashSet<String> = doc
                    .services
                    .iter()
                    .filter(|s| !sets_own_needs(doc, s.map))
                    .filter(|s| {
                        let mut from = merged_services(doc, s.map, &service_of);
                        // `extends: db` inherits like a merge key does.
                        if doc.tree.lookup(s.map, "extends").is_some() {
                            from.extend(
                                definitions(&by_name, &s.name, 0)
                                    .iter()
                                    .map(|(_, x)| x.name.clone())
                                    .filter(|n| *n != s.name),
                            );
                        }
                        from.iter()
                            .any(|other| *other != s.name && fixing.contains(other.as_str()))
                    })
                    .map(|s| s.name.clone())
                    .collect();
                if selected.iter().any(|&j| !waits.contains(&diags[j].service)) {
                    selected.retain(|&j| !waits.contains(&diags[j].service));
                }
                chosen[i] = selected;
            }
        }
        if chosen.iter().all(Vec::is_empty) {
            break;
        }
        let old = std::mem::take(&mut current);
        for (i, (doc, selected)) in old.into_iter().zip(&chosen).enumerate() {
            if selected.is_empty() {
                current.push(doc);
                continue;
            }
            // Edits are data: the tree is not needed to apply them.
            let old_text = doc.into_text();
            let fixes: Vec<_> = selected
                .iter()
                .map(|&j| pass[i][j].fix.as_ref().expect("selected"))
                .collect();
            let (_, taken) = crate::edit::select(&old_text, &fixes);
            passes[i] += 1;
            if passes[i] == 1 {
                // The way back from the new text, which the diff is written from at the end
                // (the original is not kept); taken before the text is edited in place.
                if opts.diffs {
                    undo[i] = Some(crate::edit::inverse(&old_text, &taken));
                }
            } else if opts.diffs && originals[i].is_none() {
                // The undo edits are in text order and do not overlap: splice them back.
                let back = undo[i].take().unwrap_or_default();
                let back: Vec<&crate::edit::Edit> = back.iter().collect();
                originals[i] = Some(crate::edit::splice(&old_text, &back));
            }
            // The new text is made in the buffer of the old one, which is not kept.
            let (new_text, changed_now) = crate::edit::splice_owned(old_text, &taken);
            if passes[i] == 1 {
                changed[i] = changed_now;
            }
            drop(taken);
            let next = Document::parse(new_text, opts.limits.for_output()).map_err(|e| {
                (
                    i,
                    FileError::Refused(format!(
                        "the fixed file would not parse ({}:{}: {}); nothing was written",
                        e.line, e.col, e.message
                    )),
                )
            })?;
            if digests[i].is_none() || next.digest(HARDENING_KEYS) != digests[i] {
                return Err((
                    i,
                    FileError::Refused(
                        "the fix would change more than hardening keys; nothing was written".into(),
                    ),
                ));
            }
            current.push(next);
        }
        let refs: Vec<&Document> = current.iter().collect();
        later = Some(check_keeping(&refs, opts, &dirs, Some(&wanted)));
    }
    let pass = later.as_ref().map_or(&first, |(kept, _)| kept);
    if let Some(i) = pass.iter().position(|d| d.iter().any(wanted)) {
        return Err((
            i,
            FileError::Refused(
                "the fixes did not settle (a second run would change the file again); nothing was written".into(),
            ),
        ));
    }
    // A finding is fixed when the final file no longer has it.
    let applied: Vec<Vec<bool>> = match &later {
        None => first.iter().map(|found| vec![false; found.len()]).collect(),
        Some((kept, seen)) => first
            .iter()
            .zip(kept.iter().zip(seen))
            .map(|(found, (kept, seen))| {
                let left: std::collections::HashSet<(&str, &str)> = kept
                    .iter()
                    .map(|p| (p.rule, p.service.as_str()))
                    .chain(seen.iter().map(|(rule, service)| (*rule, service.as_str())))
                    .collect();
                found
                    .iter()
                    .map(|d| wanted(d) && !left.contains(&(d.rule, d.service.as_str())))
                    .collect()
            })
            .collect(),
    };
    drop(later);
    let mut out = Vec::with_capacity(n);
    let files = current.into_iter().zip(first).zip(applied);
    for (i, ((cur, diagnostics), applied)) in files.enumerate() {
        let text = cur.into_text();
        let mut hunks = None;
        if passes[i] > 1 {
            changed[i] = match (&originals[i], fingerprints[i]) {
                (Some(orig), _) => *orig != text,
                (None, Some(f)) => Fingerprint::of(text.as_bytes()) != f,
                (None, None) => true,
            };
            if let Some(orig) = originals[i].take() {
                hunks = Some(crate::diff::hunks(&orig, &text));
            }
        } else if let Some(back) = undo[i].take() {
            // Written now, with the tree gone, rather than held through the passes.
            let back: Vec<&crate::edit::Edit> = back.iter().collect();
            hunks = Some(crate::diff::hunks_undone(&text, &back));
        }
        if opts.diffs && hunks.is_none() {
            hunks = Some(String::new());
        }
        out.push(Fixed {
            original: fingerprints[i],
            text,
            diagnostics,
            applied,
            hunks,
            changed: changed[i],
        });
    }
    Ok(out)
}

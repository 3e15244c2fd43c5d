//! `fix --into OVERLAY`: harden the project in memory, write only the difference into an
//! overlay file (see [`crate::overlay`]), leave the base files untouched.

use std::path::Path;

use super::inputs::*;
use super::{ExitStatus, Io, IoResult};
use crate::cli::FixArgs;
use crate::document::Document;
use crate::edit::Applicability;
use crate::fixer::{self, Options};
use crate::overlay;
use crate::source::Fingerprint;

fn problem(display: &str, message: String) -> FileProblem {
    FileProblem {
        display: display.to_string(),
        at: None,
        message,
    }
}

/// Same file, whichever way it was named.
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// A base file's path as `docker compose -f` takes it from the overlay's directory.
fn relative_to_overlay(base: &Path, overlay: &Path) -> String {
    let dir = overlay.parent().filter(|d| !d.as_os_str().is_empty());
    match dir.and_then(|d| base.strip_prefix(d).ok()) {
        Some(rel) => display_path(rel),
        None if dir.is_none() => display_path(base),
        None => display_path(&std::path::absolute(base).unwrap_or(base.to_path_buf())),
    }
}

pub(super) fn fix_into(args: &FixArgs, target: &Path, io: &mut Io) -> IoResult {
    match plan(args, target, io) {
        Ok(status) => Ok(status),
        Err(p) => {
            writeln!(io.stderr, "{}", p.render())?;
            Ok(ExitStatus::Error)
        }
    }
}

/// The overlay as it is now, when it exists.
fn read_existing(
    target: &Path,
    max: u64,
    opts: &Options,
) -> Result<Option<(Document, Fingerprint)>, FileProblem> {
    if !target.exists() {
        return Ok(None);
    }
    let display = display_path(target);
    let text = decode(&display, read_file(target, max)?)?;
    let fp = Fingerprint::of(text.as_bytes());
    let doc = fixer::parse(text, opts).map_err(|e| file_error(&display, e))?;
    Ok(Some((doc, fp)))
}

fn plan(args: &FixArgs, target: &Path, io: &mut Io) -> Result<ExitStatus, FileProblem> {
    let shared = &args.shared;
    let name = display_path(target);
    if shared.paths.iter().any(|p| p.as_os_str() == "-") {
        return Err(problem(
            &name,
            "--into needs compose files, not standard input".into(),
        ));
    }
    let (inputs, _) = inputs(shared, io);
    let mut bases: Vec<Input> = Vec::new();
    for i in inputs {
        let i = i?;
        if i.path.as_deref().is_some_and(|p| same_file(p, target)) {
            continue;
        }
        bases.push(i);
    }
    if bases.is_empty() {
        return Err(problem(
            &name,
            "no compose file to harden into this overlay".into(),
        ));
    }
    let (opts, unverified) = match configs(shared, &[Ok(clone_input(&bases[0]))]).pop() {
        Some(Ok(o)) => o,
        Some(Err(p)) => return Err(p),
        None => unreachable!("one input, one configuration"),
    };
    let min = if unverified {
        Applicability::Unverified
    } else {
        Applicability::Verified
    };
    let dirs: Vec<Option<std::path::PathBuf>> = bases.iter().map(dir_of).collect();
    let dir_refs: Vec<Option<&Path>> = dirs.iter().map(|d| d.as_deref()).collect();
    let mut before = Vec::new();
    for b in &bases {
        before.push(fixer::parse(b.text.clone(), &opts).map_err(|e| file_error(&b.display, e))?);
    }
    let texts: Vec<(String, Option<&Path>)> = bases
        .iter()
        .zip(&dir_refs)
        .map(|(b, d)| (b.text.clone(), *d))
        .collect();
    let fixed =
        fixer::fix_project(texts, &opts, min).map_err(|(i, e)| file_error(&bases[i].display, e))?;
    let mut after = Vec::new();
    for (f, b) in fixed.iter().zip(&bases) {
        after.push(fixer::parse(f.text.clone(), &opts).map_err(|e| file_error(&b.display, e))?);
    }
    let wants = overlay::wanted(
        &before.iter().collect::<Vec<_>>(),
        &after.iter().collect::<Vec<_>>(),
    );
    let existing = read_existing(target, shared.max_size, &opts)?;
    let base_names: Vec<String> = bases
        .iter()
        .map(|b| relative_to_overlay(b.path.as_deref().unwrap_or(Path::new("-")), target))
        .collect();
    let text = overlay::update(
        existing.as_ref().map(|(d, _)| d),
        &wants,
        &base_names,
        &name,
        |t| fixer::parse(t, &opts).ok(),
    );
    verify(&before, &after, &text, &opts, &name)?;
    let old = existing.as_ref().map(|(d, _)| d.text()).unwrap_or("");
    let changed = existing.is_none() || old != text;
    report(args, io, &wants, &name, changed)?;
    if !changed {
        return Ok(ExitStatus::Success);
    }
    if args.diff {
        let mut d = crate::diff::unified(&name, old, &text);
        if existing.is_none() {
            // A new file, as git writes one.
            d = d.replacen(
                &format!("\n--- a/{name}\n"),
                "\nnew file mode 100644\n--- /dev/null\n",
                1,
            );
        }
        let d = if io.color {
            crate::diff::colorize(&d)
        } else {
            d
        };
        io.stdout
            .write_all(d.as_bytes())
            .map_err(|e| problem(&name, e.to_string()))?;
        return Ok(if shared.exit_zero {
            ExitStatus::Success
        } else {
            ExitStatus::Failure
        });
    }
    match existing {
        Some((_, fp)) => crate::write::replace(target, fp, text.as_bytes()),
        None => create(target, text.as_bytes()),
    }
    .map_err(|m| problem(&name, m))?;
    Ok(ExitStatus::Success)
}

fn clone_input(i: &Input) -> Input {
    Input {
        display: i.display.clone(),
        path: i.path.clone(),
        text: String::new(),
        project: i.project,
        root: i.root.clone(),
        named: None,
    }
}

fn create(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| {
            format!(
                "cannot create the overlay: {}",
                e.to_string().to_lowercase()
            )
        })?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("cannot write the overlay: {}", e.to_string().to_lowercase()))
}

/// The base files plus the overlay must mean what the in-place hardened files mean, for
/// every hardening key of every service; otherwise nothing is written.
fn verify(
    before: &[Document],
    after: &[Document],
    text: &str,
    opts: &Options,
    name: &str,
) -> Result<(), FileProblem> {
    let doc = fixer::parse(text.to_string(), opts).map_err(|e| file_error(name, e))?;
    let mut merged: Vec<&Document> = before.iter().collect();
    merged.push(&doc);
    let after: Vec<&Document> = after.iter().collect();
    for s in after.iter().flat_map(|d| &d.services) {
        for key in overlay::KEYS {
            let want = sorted(overlay::merged(&after, &s.name, key));
            let got = sorted(overlay::merged(&merged, &s.name, key));
            if want != got {
                return Err(problem(
                    name,
                    format!(
                        "the overlay would not give service {:?} the hardened {key} ({got:?} instead of {want:?}); nothing was written",
                        s.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Order does not matter in a capability or security_opt list.
fn sorted(v: Option<overlay::Value>) -> Option<overlay::Value> {
    match v {
        Some(overlay::Value::List(mut i)) => {
            i.sort();
            Some(overlay::Value::List(i))
        }
        other => other,
    }
}

fn report(
    args: &FixArgs,
    io: &mut Io,
    wants: &[overlay::Want],
    name: &str,
    changed: bool,
) -> Result<(), FileProblem> {
    if args.shared.quiet {
        return Ok(());
    }
    let verb = match (changed, args.diff) {
        (false, _) => "is up to date",
        (true, true) => "would be written",
        (true, false) => "written",
    };
    let line = format!(
        "{name} {verb}: hardening for {}",
        super::fix::plural(wants.len(), "service", "services")
    );
    writeln!(io.stderr, "{line}").map_err(|e| problem(name, e.to_string()))
}

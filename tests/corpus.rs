//! Every file of the shared corpus of real compose files (../shared/corpus/public, when it
//! exists) is fixed without the fixer refusing its own edits, and a second run changes
//! nothing. Skips with a message when the corpus is absent.

use std::path::{Path, PathBuf};

use compose_harden::document::Document;
use compose_harden::edit::Applicability;
use compose_harden::fixer::{self, FileError, Options};
use compose_harden::yaml::{Limits, Tree};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
            out.push(p);
        }
    }
}

#[test]
fn every_corpus_file_fixes_cleanly_and_settles() {
    let root = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/corpus/public"
    ));
    if !root.is_dir() {
        eprintln!("skipped: no corpus at {}", root.display());
        return;
    }
    let mut all = Vec::new();
    files(root, &mut all);
    all.sort();
    let opts = Options {
        diffs: true,
        ..Options::default()
    };
    let (mut fixed, mut refused_input, mut differing) = (0, 0, 0);
    for path in &all {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        let dir = path.parent();
        for min in [Applicability::Verified, Applicability::Unverified] {
            match fixer::fix(text.clone(), &opts, dir, min) {
                Ok(out) => {
                    if out.changed() {
                        fixed += 1;
                        let direct = compose_harden::diff::with_header(
                            "f",
                            out.hunks.as_deref().expect("diffs were asked for"),
                        );
                        let searched = compose_harden::diff::unified("f", &text, &out.text);
                        if direct != searched {
                            differing += 1;
                        }
                        Document::parse(out.text.clone(), Limits::default())
                            .expect("output parses");
                        let again =
                            fixer::fix(out.text.clone(), &opts, dir, min).expect("second run");
                        assert_eq!(
                            again.text,
                            out.text,
                            "{}: second run changed it",
                            path.display()
                        );
                    }
                }
                Err(FileError::Input(_)) => refused_input += 1,
                Err(FileError::Refused(m)) => panic!("{}: {m}", path.display()),
            }
        }
    }
    eprintln!(
        "{} files: {fixed} fixes made, {refused_input} refused as not compose, {differing} diffs written from edits differ from a searched diff",
        all.len()
    );
    assert!(fixed > 1000);
    // The diff written from the edits and the one a diff search finds agree on real files.
    assert_eq!(differing, 0);
}

/// Large files are read in two parts in parallel. Cut every corpus file (and the fixer
/// fixtures) where a large file would be cut: each must read exactly as it reads whole, or
/// fail the same way.
#[test]
fn every_file_read_in_parts_reads_as_it_does_whole() {
    let root = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/corpus/public"
    ));
    let fixtures = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"));
    let mut all = Vec::new();
    if root.is_dir() {
        files(root, &mut all);
    } else {
        eprintln!("no corpus at {}: fixtures only", root.display());
    }
    files(fixtures, &mut all);
    all.sort();
    let outline = |r: Result<compose_harden::yaml::Tree, _>| r.map(|t| t.outline());
    let mut checked = 0;
    for path in &all {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        let whole = Tree::parse_split(text.clone(), Limits::default(), usize::MAX);
        let parts = Tree::parse_split(text, Limits::default(), 0);
        assert_eq!(outline(parts), outline(whole), "{}", path.display());
        checked += 1;
    }
    assert!(checked > 20, "only {checked} files found");
}

//! parse → rules → edits → re-parse, on arbitrary input: no panic; when a fix is made,
//! the output parses, means the same outside hardening keys, and a second run is a no-op.
//! Reading the input in parts (as large files are read) gives the tree, or the error, that
//! reading it whole gives.
#![no_main]

use compose_harden::diff;
use compose_harden::document::Document;
use compose_harden::edit::Applicability;
use compose_harden::fixer::{self, FileError, HARDENING_KEYS, Options};
use compose_harden::yaml::{Limits, Tree};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let whole = Tree::parse_split(text.to_string(), Limits::default(), usize::MAX).map(|t| t.outline());
    let parts = Tree::parse_split(text.to_string(), Limits::default(), 0).map(|t| t.outline());
    assert_eq!(parts, whole, "reading in parts differs from reading whole");
    let opts = Options::default();
    for min in [Applicability::Verified, Applicability::Unverified] {
        match fixer::fix(text.to_string(), &opts, None, min) {
            Ok(fixed) => {
                if !fixed.changed() {
                    continue;
                }
                let before = Document::parse(text.to_string(), Limits::default()).expect("input parsed once");
                let after = Document::parse(fixed.text.clone(), Limits::default()).expect("output parses");
                assert_eq!(
                    before.skeleton(HARDENING_KEYS).unwrap(),
                    after.skeleton(HARDENING_KEYS).unwrap()
                );
                let again = fixer::fix(fixed.text.clone(), &opts, None, min).expect("second run");
                assert_eq!(again.text, fixed.text, "second run changed the file");
                // With a diff asked for, the same text, and a diff that gives it.
                let diffs = Options { diffs: true, ..opts.clone() };
                let with_diff = fixer::fix(text.to_string(), &diffs, None, min).expect("fixed once");
                assert_eq!(with_diff.text, fixed.text);
                let hunks = with_diff.hunks.as_deref().expect("a diff was asked for");
                assert_eq!(diff::apply_hunks(text, hunks).as_deref(), Ok(fixed.text.as_str()));
            }
            Err(FileError::Input(_)) => {}
            Err(FileError::Refused(m)) => panic!("fixer refused its own fix: {m}"),
        }
    }
});

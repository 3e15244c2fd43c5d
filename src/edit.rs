//! Edits are data: a byte range and the text that replaces it. A [`Fix`] groups the edits
//! that must land together and says how sure we are that it keeps the service working.

use serde::Serialize;

/// Replace `start..end` of the original text with `content` (an insertion when the range is empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edit {
    pub start: usize,
    pub end: usize,
    pub content: String,
    /// Among insertions at one offset, deeper ones land first: an item appended to a list
    /// that ends a service must come before a key added to that service.
    #[serde(skip)]
    pub depth: usize,
}

impl Edit {
    pub fn insertion(at: usize, content: impl Into<String>) -> Edit {
        Edit {
            start: at,
            end: at,
            content: content.into(),
            depth: 0,
        }
    }

    /// Set the nesting depth (the indentation column of the inserted text).
    pub fn at_depth(mut self, depth: usize) -> Edit {
        self.depth = depth;
        self
    }

    pub fn deletion(start: usize, end: usize) -> Edit {
        debug_assert!(start <= end);
        Edit {
            start,
            end,
            content: String::new(),
            depth: 0,
        }
    }
}

/// How sure we are that a fix keeps the service working (ruff's safe / unsafe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Applicability {
    /// May break the service; applied only with `--unverified`.
    Unverified,
    /// Backed by knowledge or by structure; applied by `fix`.
    Verified,
}

impl Applicability {
    pub fn as_str(self) -> &'static str {
        match self {
            Applicability::Verified => "verified",
            Applicability::Unverified => "unverified",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fix {
    pub edits: Vec<Edit>,
    pub applicability: Applicability,
}

impl Fix {
    pub fn new(applicability: Applicability, mut edits: Vec<Edit>) -> Fix {
        edits.sort_by_key(|e| (e.start, e.end));
        Fix {
            edits,
            applicability,
        }
    }
}

/// Apply fixes to `text` in one pass. A fix whose edits overlap an edit already taken is
/// skipped as a whole; the indices of the applied fixes are returned with the new text.
/// Insertions at the same offset land in the order the fixes are given.
pub fn apply(text: &str, fixes: &[&Fix]) -> (String, Vec<usize>) {
    let (out, applied, _) = apply_edits(text, fixes);
    (out, applied)
}

/// [`apply`], also returning the edits in the order they were applied (offsets into `text`).
pub fn apply_edits<'f>(text: &str, fixes: &[&'f Fix]) -> (String, Vec<usize>, Vec<&'f Edit>) {
    let (applied, taken) = select(text, fixes);
    (splice(text, &taken), applied, taken)
}

/// Which fixes [`apply`] applies (their indices), and their edits in the order they land.
pub fn select<'f>(text: &str, fixes: &[&'f Fix]) -> (Vec<usize>, Vec<&'f Edit>) {
    let mut taken: Vec<(usize, &'f Edit)> = Vec::new();
    // The ranges taken so far, which never overlap one another (two insertions at one
    // point do not overlap: both are applied). Sorted by (start, end),
    // their ends never decrease, so the last range starting before an edit ends is the
    // only one that can overlap it.
    let mut ranges: std::collections::BTreeSet<(usize, usize)> = std::collections::BTreeSet::new();
    let mut applied = Vec::new();
    for (i, fix) in fixes.iter().enumerate() {
        let clash = fix.edits.iter().any(|e| {
            e.end > text.len()
                || ranges
                    .range(..(e.end, 0))
                    .next_back()
                    .is_some_and(|&(start, end)| start < e.end && e.start < end)
        });
        if clash {
            continue;
        }
        applied.push(i);
        for e in &fix.edits {
            ranges.insert((e.start, e.end));
        }
        taken.extend(fix.edits.iter().map(|e| (i, e)));
    }
    // Insertions at one point: deeper first, then in fix order.
    taken.sort_by_key(|(order, e)| (e.start, e.end, std::cmp::Reverse(e.depth), *order));
    (applied, taken.into_iter().map(|(_, e)| e).collect())
}

/// `text` with `edits` (sorted, not overlapping, as [`select`] gives them) made.
pub fn splice(text: &str, edits: &[&Edit]) -> String {
    let extra: usize = edits.iter().map(|e| e.content.len()).sum();
    let mut out = String::with_capacity(text.len() + extra);
    let mut pos = 0;
    for e in edits {
        out.push_str(&text[pos..e.start]);
        out.push_str(&e.content);
        pos = e.end;
    }
    out.push_str(&text[pos..]);
    out
}

/// The edits that turn the result of applying `edits` (sorted, as [`apply_edits`] returns
/// them) to `text` back into `text`.
pub fn inverse(text: &str, edits: &[&Edit]) -> Vec<Edit> {
    let mut shift: isize = 0;
    let mut out = Vec::with_capacity(edits.len());
    for e in edits {
        let start = (e.start as isize + shift) as usize;
        out.push(Edit {
            start,
            end: start + e.content.len(),
            content: text[e.start..e.end].to_string(),
            depth: 0,
        });
        shift += e.content.len() as isize - (e.end - e.start) as isize;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_edits_give_the_text_back() {
        let text = "services:\n  a:\n    image: x\n";
        let fixes = [
            Fix::new(
                Applicability::Verified,
                vec![Edit::insertion(10, "  # top\n")],
            ),
            Fix::new(
                Applicability::Verified,
                vec![Edit::insertion(10, "  # two\n")],
            ),
            Fix::new(Applicability::Verified, vec![Edit::deletion(14, 16)]),
            Fix::new(
                Applicability::Verified,
                vec![Edit::insertion(text.len(), "    user: \"1\"\n")],
            ),
        ];
        let refs: Vec<&Fix> = fixes.iter().collect();
        let (new, applied, taken) = apply_edits(text, &refs);
        assert_eq!(applied, vec![0, 1, 2, 3]);
        assert_ne!(new, text);
        let back = Fix::new(Applicability::Verified, inverse(text, &taken));
        assert_eq!(apply(&new, &[&back]).0, text);
    }

    #[test]
    fn insertions_at_one_point_keep_their_order() {
        let a = Fix::new(Applicability::Verified, vec![Edit::insertion(1, "a")]);
        let b = Fix::new(Applicability::Verified, vec![Edit::insertion(1, "b")]);
        assert_eq!(apply("xy", &[&a, &b]), ("xaby".to_string(), vec![0, 1]));
    }

    #[test]
    fn overlapping_fix_is_skipped_whole() {
        let a = Fix::new(Applicability::Verified, vec![Edit::deletion(0, 2)]);
        let b = Fix::new(
            Applicability::Verified,
            vec![Edit::insertion(3, "!"), Edit::deletion(1, 3)],
        );
        assert_eq!(apply("abcd", &[&a, &b]), ("cd".to_string(), vec![0]));
    }

    #[test]
    fn overlaps_are_found_whatever_order_the_ranges_were_taken_in() {
        let f = |edits: Vec<Edit>| Fix::new(Applicability::Verified, edits);
        let late = f(vec![Edit::deletion(6, 8)]);
        let early = f(vec![Edit::deletion(1, 3)]);
        let point = f(vec![Edit::insertion(4, "+")]);
        // Inside a taken deletion, across two of them, and touching one at its ends.
        let inside = f(vec![Edit::insertion(7, "x")]);
        let across = f(vec![Edit::deletion(2, 7)]);
        let touching = f(vec![Edit::insertion(3, "<"), Edit::insertion(6, ">")]);
        let fixes = [&late, &early, &point, &inside, &across, &touching];
        assert_eq!(
            apply("abcdefghij", &fixes),
            ("a<d+ef>ij".to_string(), vec![0, 1, 2, 5])
        );
    }
}

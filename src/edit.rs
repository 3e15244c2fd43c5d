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

/// [`splice`] in the text's own buffer, which grows only by what the edits add: a big file
/// is not held twice. Also tells whether the text changed.
pub fn splice_owned(text: String, edits: &[&Edit]) -> (String, bool) {
    let delta = |e: &Edit| e.content.len() as isize - (e.end - e.start) as isize;
    let total: isize = edits.iter().map(|e| delta(e)).sum();
    let same = |e: &&Edit| text.as_bytes()[e.start..e.end] == *e.content.as_bytes();
    if edits.iter().all(same) {
        return (text, false);
    }
    if total == 0 && edits.iter().filter(|e| !same(e)).nth(1).is_some() {
        // Edits that make up for one another could give the same text back (rare): compare.
        let out = splice(&text, edits);
        let changed = out != text;
        return (out, changed);
    }
    let old_len = text.len();
    let new_len = old_len
        .checked_add_signed(total)
        .expect("edits stay inside the text");
    let mut buf = text.into_bytes();
    buf.resize(new_len.max(old_len), 0);
    // The run of text after edit k (before edit k + 1) moves by the sum of the size changes
    // of edits 0..=k. Runs moving right are moved last first and runs moving left first
    // first, so none overwrites a run not yet moved; the edits' new text goes in last.
    let moves = |k: usize, shift: isize, buf: &mut Vec<u8>| {
        let from = edits[k].end;
        let to = edits.get(k + 1).map_or(old_len, |e| e.start);
        if shift != 0 && from < to {
            buf.copy_within(from..to, from.wrapping_add_signed(shift));
        }
    };
    let mut shift = total;
    for k in (0..edits.len()).rev() {
        if shift > 0 {
            moves(k, shift, &mut buf);
        }
        shift -= delta(edits[k]);
    }
    for (k, e) in edits.iter().enumerate() {
        shift += delta(e);
        if shift < 0 {
            moves(k, shift, &mut buf);
        }
    }
    shift = 0;
    for e in edits {
        let at = e.start.wrapping_add_signed(shift);
        buf[at..at + e.content.len()].copy_from_slice(e.content.as_bytes());
        shift += delta(e);
    }
    buf.truncate(new_len);
    let out = String::from_utf8(buf).expect("edits begin and end on character boundaries");
    (out, true)
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
    fn splicing_in_place_matches_splicing_a_copy() {
        // A small deterministic generator: edit sets that grow, shrink, or both, with
        // several insertions at one point, at the start and at the end.
        let mut next = crate::testing::numbers(0x9e37_79b9_7f4a_7c15);
        let text: String = (0..200)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        for round in 0..2000 {
            let mut points: Vec<usize> = (0..next(8) * 2).map(|_| next(text.len() + 1)).collect();
            points.sort();
            let edits: Vec<Edit> = points
                .chunks(2)
                .map(|p| {
                    let end = if next(3) == 0 { p[0] } else { p[1] };
                    let content = "XYZ0123456789XYZ"[..next(16)].to_string();
                    let content = if round % 7 == 0 {
                        String::new()
                    } else {
                        content
                    };
                    Edit {
                        start: p[0],
                        end,
                        content,
                        depth: 0,
                    }
                })
                .collect();
            let refs: Vec<&Edit> = edits.iter().collect();
            let want = splice(&text, &refs);
            let (got, changed) = splice_owned(text.clone(), &refs);
            assert_eq!(got, want, "round {round}: {edits:?}");
            assert_eq!(changed, want != text, "round {round}");
        }
    }

    #[test]
    fn edits_that_make_up_for_one_another_change_nothing() {
        let (a, b) = (Edit::deletion(0, 1), Edit::insertion(2, "a"));
        assert_eq!(splice_owned("aa".into(), &[&a, &b]), ("aa".into(), false));
        let c = Edit::insertion(2, "b");
        assert_eq!(splice_owned("aa".into(), &[&a, &c]), ("ab".into(), true));
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

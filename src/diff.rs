//! Unified diffs that `git apply` takes, CRLF files and missing final newlines included.

use similar::TextDiff;

/// A unified diff of `old` → `new` for `path` (as git names it, `/`-separated), with a
/// `diff --git` header. Empty when nothing changed.
pub fn unified(path: &str, old: &str, new: &str) -> String {
    with_header(path, &hunks(old, new))
}

/// The hunks of a unified diff of `old` → `new`, found by searching (no file header).
pub fn hunks(old: &str, new: &str) -> String {
    if old == new {
        return String::new();
    }
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .missing_newline_hint(true)
        .to_string()
}

/// Hunks under the header that names `path`: a diff `git apply` takes. Empty hunks give an
/// empty diff.
pub fn with_header(path: &str, hunks: &str) -> String {
    if hunks.is_empty() {
        return String::new();
    }
    let mut out = String::with_capacity(hunks.len() + 3 * path.len() + 40);
    out.push_str(&format!(
        "diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n"
    ));
    out.push_str(hunks);
    out
}

/// Colour a diff for a terminal: additions green, removals red, hunk headers cyan.
pub fn colorize(diff: &str) -> String {
    let mut out = String::with_capacity(diff.len() + 64);
    for line in diff.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let code =
            if body.starts_with("+++") || body.starts_with("---") || body.starts_with("diff --git")
            {
                "1"
            } else if body.starts_with('+') {
                "32"
            } else if body.starts_with('-') {
                "31"
            } else if body.starts_with("@@") {
                "36"
            } else {
                ""
            };
        if code.is_empty() {
            out.push_str(line);
        } else {
            out.push_str(&format!("\x1b[{code}m{body}\x1b[0m{nl}"));
        }
    }
    out
}

/// The hunks of a unified diff built straight from the edits that turned `old` into the new
/// text (sorted, non-overlapping, offsets into `old`), without searching for a diff: the
/// edits already say what changed. The same format as [`hunks`]; under
/// [`with_header`], `git apply` takes it.
pub fn hunks_from_edits(old: &str, edits: &[&crate::edit::Edit]) -> String {
    use crate::source::{line_start, next_line_start};
    if edits.is_empty() {
        return String::new();
    }
    // The start of the line `pos` is on; the end of a text that ends with a line break is
    // on the last line.
    let line_of = |pos: usize| {
        if pos >= old.len() && pos > 0 {
            line_start(old, old.len() - 1)
        } else {
            line_start(old, pos)
        }
    };
    // Line numbers by counting line breaks forward (changes come in text order), so no
    // index of every line is built.
    let (mut counted, mut line_no) = (0usize, 0usize);
    let mut number = |pos: usize| {
        line_no += memchr::memchr_iter(b'\n', &old.as_bytes()[counted..pos]).count();
        counted = pos;
        line_no
    };
    // 1. Whole-line changes, with the lines the change leaves as they were trimmed at both
    //    ends: (first old line, its byte offset, the old lines, the new lines).
    let mut changes: Vec<(usize, usize, Vec<&str>, Vec<String>)> = Vec::new();
    let mut i = 0;
    while i < edits.len() {
        let a = line_of(edits[i].start);
        let mut last_end = edits[i].end;
        let mut j = i + 1;
        // Edits that touch the same line form one change.
        while j < edits.len() && line_of(edits[j].start) <= line_of(last_end) {
            last_end = last_end.max(edits[j].end);
            j += 1;
        }
        let b = next_line_start(old, line_of(last_end)).max(last_end);
        let mut new_text = String::new();
        let mut pos = a;
        for e in &edits[i..j] {
            new_text.push_str(&old[pos..e.start]);
            new_text.push_str(&e.content);
            pos = e.end;
        }
        new_text.push_str(&old[pos..b]);
        let mut olds: Vec<&str> = old[a..b].split_inclusive('\n').collect();
        let mut news: Vec<String> = new_text.split_inclusive('\n').map(str::to_string).collect();
        let (mut line, mut at) = (number(a), a);
        let same_head = olds
            .iter()
            .zip(&news)
            .take_while(|(o, n)| **o == n.as_str())
            .count();
        for o in olds.drain(..same_head) {
            line += 1;
            at += o.len();
        }
        news.drain(..same_head);
        while !olds.is_empty()
            && !news.is_empty()
            && olds.last().copied() == news.last().map(String::as_str)
        {
            olds.pop();
            news.pop();
        }
        if !olds.is_empty() || !news.is_empty() {
            changes.push((line, at, olds, news));
        }
        i = j;
    }
    if changes.is_empty() {
        return String::new();
    }
    // 2. Hunks: changes whose context (3 lines each side) touches merge.
    const CONTEXT: usize = 3;
    let push = |body: &mut String, mark: char, text: &str| {
        body.push(mark);
        body.push_str(text);
        if !text.ends_with('\n') {
            body.push_str("\n\\ No newline at end of file\n");
        }
    };
    let mut out = String::new();
    let mut delta: isize = 0;
    let mut k = 0;
    while k < changes.len() {
        let mut end = k + 1;
        while end < changes.len() {
            let prev_end = changes[end - 1].0 + changes[end - 1].2.len();
            if changes[end].0 > prev_end + 2 * CONTEXT {
                break;
            }
            end += 1;
        }
        let group = &changes[k..end];
        let mut body = String::new();
        let (mut old_n, mut new_n) = (0usize, 0usize);
        // The context before the first change: up to three whole lines.
        let (first_line, first_at) = (group[0].0, group[0].1);
        let mut from = first_at;
        for _ in 0..CONTEXT.min(first_line) {
            from = line_start(old, from - 1);
        }
        let first = first_line - CONTEXT.min(first_line);
        let mut gap_from = from;
        for (_, at, olds, news) in group {
            // Unchanged lines since the previous change (or the leading context).
            for l in old[gap_from..*at].split_inclusive('\n') {
                push(&mut body, ' ', l);
                old_n += 1;
                new_n += 1;
            }
            for o in olds {
                push(&mut body, '-', o);
            }
            for n in news {
                push(&mut body, '+', n);
            }
            old_n += olds.len();
            new_n += news.len();
            gap_from = at + olds.iter().map(|o| o.len()).sum::<usize>();
        }
        // The context after the last change.
        let mut to = gap_from;
        for _ in 0..CONTEXT {
            if to >= old.len() {
                break;
            }
            to = next_line_start(old, to);
        }
        for l in old[gap_from..to].split_inclusive('\n') {
            push(&mut body, ' ', l);
            old_n += 1;
            new_n += 1;
        }
        let old_start = if old_n == 0 { first } else { first + 1 };
        let new_first = (first as isize + delta) as usize;
        let new_start = if new_n == 0 { new_first } else { new_first + 1 };
        out.push_str(&format!(
            "@@ -{} +{} @@\n",
            range(old_start, old_n),
            range(new_start, new_n)
        ));
        out.push_str(&body);
        delta += new_n as isize - old_n as isize;
        k = end;
    }
    out
}

fn range(start: usize, count: usize) -> String {
    if count == 1 {
        start.to_string()
    } else {
        format!("{start},{count}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edit::Edit;

    fn both(old: &str, edits: &[Edit]) -> (String, String) {
        let fixes: Vec<crate::edit::Fix> = edits
            .iter()
            .map(|e| crate::edit::Fix::new(crate::edit::Applicability::Verified, vec![e.clone()]))
            .collect();
        let refs: Vec<&crate::edit::Fix> = fixes.iter().collect();
        let (new, _) = crate::edit::apply(old, &refs);
        let edits: Vec<&Edit> = edits.iter().collect();
        (
            unified("f", old, &new),
            with_header("f", &hunks_from_edits(old, &edits)),
        )
    }

    #[test]
    fn edits_diff_matches_the_searched_diff() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nm\n";
        let cases: Vec<Vec<Edit>> = vec![
            vec![Edit::insertion(4, "x\ny\n")],
            vec![Edit::insertion(0, "top\n")],
            vec![Edit::insertion(old.len(), "end\n")],
            vec![Edit::insertion(2, "1\n"), Edit::insertion(20, "2\n")],
            vec![Edit::insertion(2, "1\n"), Edit::insertion(8, "2\n")],
            vec![Edit::deletion(4, 8)],
            vec![Edit::insertion(5, " tail")],
            vec![Edit::insertion(5, ", x"), Edit::insertion(6, "y\n")],
            vec![Edit::insertion(0, "x\n"), Edit::insertion(old.len(), "y\n")],
            vec![Edit::deletion(2, 10), Edit::insertion(16, "z\n")],
            vec![Edit::insertion(6, "q\n"), Edit::deletion(18, 20)],
        ];
        for edits in cases {
            let (searched, direct) = both(old, &edits);
            assert_eq!(direct, searched, "{edits:?}");
        }
    }

    #[test]
    fn no_final_newline_and_crlf() {
        let old = "a\r\nb\r\nc";
        let (searched, direct) = both(old, &[Edit::insertion(old.len(), "\r\n  d")]);
        assert_eq!(direct, searched);
        let (searched, direct) = both(old, &[Edit::insertion(3, "x\r\n")]);
        assert_eq!(direct, searched);
        let (searched, direct) = both(old, &[Edit::insertion(6, "x\r\n")]);
        assert_eq!(direct, searched);
        let (searched, direct) = both(old, &[Edit::deletion(6, 7)]);
        assert_eq!(direct, searched);
    }
}

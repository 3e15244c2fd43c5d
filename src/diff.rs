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
    // Quoted the way git quotes them, so `git apply` and `patch` read back the same name.
    let (a, b) = (
        crate::escape::git_prefixed("a/", path),
        crate::escape::git_prefixed("b/", path),
    );
    out.push_str(&format!("diff --git {a} {b}\n--- {a}\n+++ {b}\n"));
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
    hunks_of_edits(old, edits, false)
}

/// The hunks of the unified diff from the text that `undo` (sorted, non-overlapping,
/// offsets into `new`, as [`crate::edit::inverse`] gives them) makes of `new`, to `new`:
/// the same hunks [`hunks_from_edits`] writes from the original and its edits, written
/// when only the new text is kept.
pub fn hunks_undone(new: &str, undo: &[&crate::edit::Edit]) -> String {
    hunks_of_edits(new, undo, true)
}

/// The diff from `text` to what `edits` make of it, or (`reverse`) back.
fn hunks_of_edits(text: &str, edits: &[&crate::edit::Edit], reverse: bool) -> String {
    use crate::source::{line_start, next_line_start};
    if edits.is_empty() {
        return String::new();
    }
    // The start of the line `pos` is on; the end of a text that ends with a line break is
    // on the last line.
    let line_of = |pos: usize| {
        if pos >= text.len() && pos > 0 {
            line_start(text, text.len() - 1)
        } else {
            line_start(text, pos)
        }
    };
    // Line numbers by counting line breaks forward (changes come in text order), so no
    // index of every line is built.
    let (mut counted, mut line_no) = (0usize, 0usize);
    let mut number = |pos: usize| {
        line_no += memchr::memchr_iter(b'\n', &text.as_bytes()[counted..pos]).count();
        counted = pos;
        line_no
    };
    // Changes close enough to share context are written as one hunk; a hunk is written as
    // soon as the next change is too far, so only one hunk's changes are held at a time.
    let mut hunk = Hunk {
        reverse,
        ..Hunk::default()
    };
    let mut out = String::new();
    let mut delta: isize = 0;
    let mut i = 0;
    while i < edits.len() {
        // 1. A whole-line change: the lines the edits touch, before and after, with the lines
        //    the change leaves as they were trimmed at both ends.
        let a = line_of(edits[i].start);
        let mut last_end = edits[i].end;
        let mut j = i + 1;
        // Edits that touch the same line form one change.
        while j < edits.len() && line_of(edits[j].start) <= line_of(last_end) {
            last_end = last_end.max(edits[j].end);
            j += 1;
        }
        let b = next_line_start(text, line_of(last_end)).max(last_end);
        let from = hunk.news.len();
        let mut pos = a;
        for e in &edits[i..j] {
            hunk.news.push_str(&text[pos..e.start]);
            hunk.news.push_str(&e.content);
            pos = e.end;
        }
        hunk.news.push_str(&text[pos..b]);
        let (mut olds, mut news) = (a..b, from..hunk.news.len());
        let mut line = number(a);
        while let (Some(o), Some(n)) = (
            first_line(&text[olds.clone()]),
            first_line(&hunk.news[news.clone()]),
        ) && o == n
        {
            olds.start += o.len();
            news.start += n.len();
            line += 1;
        }
        while let (Some(o), Some(n)) = (
            last_line(&text[olds.clone()]),
            last_line(&hunk.news[news.clone()]),
        ) && o == n
        {
            olds.end -= o.len();
            news.end -= n.len();
        }
        i = j;
        if olds.is_empty() && news.is_empty() {
            hunk.news.truncate(from);
            continue;
        }
        let mut change = Change {
            line,
            old_lines: text[olds.clone()].split_inclusive('\n').count(),
            olds,
            news,
        };
        // 2. Changes whose context (3 lines each side) touches share a hunk.
        if hunk
            .changes
            .last()
            .is_some_and(|prev| change.line > prev.line + prev.old_lines + 2 * CONTEXT)
        {
            hunk.write(text, &mut out, &mut delta);
            // Of the new lines, only this change's are still needed.
            let keep = change.news.clone();
            hunk.news.truncate(keep.end);
            hunk.news.drain(..keep.start);
            change.news = 0..keep.len();
        }
        hunk.changes.push(change);
    }
    if !hunk.changes.is_empty() {
        hunk.write(text, &mut out, &mut delta);
    }
    out
}

/// Lines of context around each change.
const CONTEXT: usize = 3;

/// A whole-line change: its first line (0-based), the old lines it replaces (a byte range
/// of the old text) and the new lines (a byte range of [`Hunk::news`]).
struct Change {
    line: usize,
    old_lines: usize,
    olds: std::ops::Range<usize>,
    news: std::ops::Range<usize>,
}

/// The changes of one hunk being gathered, and buffers reused from hunk to hunk.
#[derive(Default)]
struct Hunk {
    /// Written from the edited text back to the text the edits were made to.
    reverse: bool,
    changes: Vec<Change>,
    news: String,
    body: String,
}

impl Hunk {
    /// Write the hunk to `out` and start the next one (its new lines are left for the
    /// caller to drop). `text` is the text the edits were made to; `delta` is how many
    /// lines the hunks written so far added to it.
    fn write(&mut self, text: &str, out: &mut String, delta: &mut isize) {
        use crate::source::{line_start, next_line_start};
        let push = |body: &mut String, mark: char, text: &str| {
            body.push(mark);
            body.push_str(text);
            if !text.ends_with('\n') {
                body.push_str("\n\\ No newline at end of file\n");
            }
        };
        let body = &mut self.body;
        body.clear();
        // Lines of the hunk in `text`, and in what the edits make of it.
        let (mut read_n, mut made_n) = (0usize, 0usize);
        // The context before the first change: up to three whole lines.
        let (first_line, first_at) = (self.changes[0].line, self.changes[0].olds.start);
        let mut from = first_at;
        for _ in 0..CONTEXT.min(first_line) {
            from = line_start(text, from - 1);
        }
        let first = first_line - CONTEXT.min(first_line);
        let mut gap_from = from;
        for c in &self.changes {
            // Unchanged lines since the previous change (or the leading context).
            for l in text[gap_from..c.olds.start].split_inclusive('\n') {
                push(body, ' ', l);
                read_n += 1;
                made_n += 1;
            }
            let (olds, news) = (&text[c.olds.clone()], &self.news[c.news.clone()]);
            // Backwards, the lines the edits make are the ones the diff removes.
            let (minus, plus) = if self.reverse {
                (news, olds)
            } else {
                (olds, news)
            };
            for o in minus.split_inclusive('\n') {
                push(body, '-', o);
            }
            for n in plus.split_inclusive('\n') {
                push(body, '+', n);
            }
            read_n += c.old_lines;
            made_n += news.split_inclusive('\n').count();
            gap_from = c.olds.end;
        }
        // The context after the last change.
        let mut to = gap_from;
        for _ in 0..CONTEXT {
            if to >= text.len() {
                break;
            }
            to = next_line_start(text, to);
        }
        for l in text[gap_from..to].split_inclusive('\n') {
            push(body, ' ', l);
            read_n += 1;
            made_n += 1;
        }
        // A side with no lines names the line before the hunk.
        let start = |first: usize, n: usize| if n == 0 { first } else { first + 1 };
        let read = range(start(first, read_n), read_n);
        let made = range(start((first as isize + *delta) as usize, made_n), made_n);
        *delta += made_n as isize - read_n as isize;
        let (from, to) = if self.reverse {
            (made, read)
        } else {
            (read, made)
        };
        out.push_str("@@ -");
        out.push_str(&from);
        out.push_str(" +");
        out.push_str(&to);
        out.push_str(" @@\n");
        out.push_str(body);
        self.changes.clear();
    }
}

/// The first line of `s` with its line break, if `s` is not empty.
fn first_line(s: &str) -> Option<&str> {
    s.split_inclusive('\n').next()
}

/// The last line of `s` with its line break, if `s` is not empty.
fn last_line(s: &str) -> Option<&str> {
    let body = s.strip_suffix('\n').unwrap_or(s);
    (!s.is_empty()).then(|| &s[body.rfind('\n').map_or(0, |i| i + 1)..])
}

/// `old` with `hunks` (as [`hunks`] and [`hunks_undone`] write them) applied, for checking
/// a diff: every context and removed line must match `old`. The error names the first
/// line of `hunks` that does not fit.
pub fn apply_hunks(old: &str, hunks: &str) -> Result<String, String> {
    let old_lines: Vec<&str> = old.split_inclusive('\n').collect();
    let (mut out, mut next) = (String::new(), 0usize);
    let mut last_added = false;
    for (n, line) in hunks.split_inclusive('\n').enumerate() {
        let bad = |what: &str| Err(format!("diff line {}: {what}: {line:?}", n + 1));
        if let Some(header) = line.strip_prefix("@@ -") {
            let range = header.split(' ').next().unwrap_or("");
            let mut parts = range.split(',');
            let start: Option<usize> = parts.next().and_then(|s| s.parse().ok());
            let count: Option<usize> = parts.next().map_or(Some(1), |c| c.parse().ok());
            let (Some(start), Some(count)) = (start, count) else {
                return bad("not a hunk header");
            };
            // A hunk that removes nothing names the line it comes after.
            let first = if count == 0 {
                start
            } else {
                start.wrapping_sub(1)
            };
            if first < next || first > old_lines.len() {
                return bad("the hunk starts out of order or past the end");
            }
            out.extend(old_lines[next..first].iter().copied());
            next = first;
        } else if line.starts_with("\\ No newline at end of file") {
            if last_added && out.pop() != Some('\n') {
                return bad("no line break to take back");
            }
        } else {
            let (mark, body) = line.split_at(line.len().min(1));
            // The old line may lack the line break the diff line needs.
            let fits = |o: Option<&&str>| o.is_some_and(|o| *o == body || format!("{o}\n") == body);
            last_added = mark == "+";
            match mark {
                " " | "-" if !fits(old_lines.get(next)) => return bad("does not match the text"),
                " " => {
                    out.push_str(old_lines[next]);
                    next += 1;
                }
                "-" => next += 1,
                "+" => out.push_str(body),
                _ => return bad("not a diff line"),
            }
        }
    }
    out.extend(old_lines[next..].iter().copied());
    Ok(out)
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
        let (new, _, taken) = crate::edit::apply_edits(old, &refs);
        let direct = with_header("f", &hunks_from_edits(old, &taken));
        // The same diff, written backwards from the new text and the edits that undo them.
        let undo = crate::edit::inverse(old, &taken);
        let undo: Vec<&Edit> = undo.iter().collect();
        assert_eq!(with_header("f", &hunks_undone(&new, &undo)), direct);
        assert_eq!(
            apply_hunks(old, &hunks_from_edits(old, &taken)),
            Ok(new.clone())
        );
        (unified("f", old, &new), direct)
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
    fn edits_diff_matches_the_searched_diff_on_generated_edits() {
        // Lines that are all different, so the searched diff has one answer.
        let mut next = crate::testing::numbers(0x2545_f491_4f6c_dd1d);
        for round in 0..500 {
            let mut old: String = (0..40).map(|i| format!("line {i}\n")).collect();
            if round % 5 == 0 {
                old.pop();
            }
            let mut points: Vec<usize> = (0..next(6) * 2)
                .map(|_| {
                    let p = next(old.len() + 1);
                    // Mostly at line starts, where fixes add keys.
                    if next(3) > 0 {
                        crate::source::line_start(&old, p)
                    } else {
                        p
                    }
                })
                .collect();
            points.sort();
            points.dedup();
            // Changes an unchanged line apart: where they touch, either order of their
            // lines is a right diff, and the search may pick the other one.
            let line = |pos: usize| old[..pos].matches('\n').count();
            let mut last_line = None;
            let edits: Vec<Edit> = points
                .chunks_exact(2)
                .filter(|p| {
                    let apart = last_line.is_none_or(|l| line(p[0]) > l + 1);
                    if apart {
                        last_line = Some(line(p[1]));
                    }
                    apart
                })
                .enumerate()
                .map(|(k, p)| match next(3) {
                    0 => Edit::deletion(p[0], p[1]),
                    1 => Edit::insertion(p[0], format!("new {round} {k}\n")),
                    _ => Edit::insertion(p[0], format!(" tail {round} {k}")),
                })
                .collect();
            let (searched, direct) = both(&old, &edits);
            assert_eq!(direct, searched, "round {round}: {edits:?}");
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

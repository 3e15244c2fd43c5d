//! Unified diffs that `git apply` takes, CRLF files and missing final newlines included.

use similar::TextDiff;

/// A unified diff of `old` → `new` for `path` (as git names it, `/`-separated), with a
/// `diff --git` header. Empty when nothing changed.
pub fn unified(path: &str, old: &str, new: &str) -> String {
    if old == new {
        return String::new();
    }
    let diff = TextDiff::from_lines(old, new);
    let mut out = format!("diff --git a/{path} b/{path}\n");
    out.push_str(
        &diff
            .unified_diff()
            .context_radius(3)
            .missing_newline_hint(true)
            .header(&format!("a/{path}"), &format!("b/{path}"))
            .to_string(),
    );
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

/// A unified diff built straight from the edits that turned `old` into the new text (sorted,
/// non-overlapping, offsets into `old`), without searching for a diff: the edits already say
/// what changed. The same format as [`unified`]; `git apply` takes it.
pub fn unified_from_edits(path: &str, old: &str, edits: &[crate::edit::Edit]) -> String {
    if edits.is_empty() {
        return String::new();
    }
    let starts: Vec<usize> = std::iter::once(0)
        .chain(old.match_indices('\n').map(|(i, _)| i + 1))
        .filter(|&s| s < old.len() || s == 0)
        .collect();
    let line_of = |pos: usize| starts.partition_point(|&s| s <= pos).max(1) - 1;
    let line_start = |l: usize| starts.get(l).copied().unwrap_or(old.len());
    // 1. Whole-line changes: (first old line, old line count, new lines).
    let mut changes: Vec<(usize, usize, Vec<&str>, String)> = Vec::new();
    let mut i = 0;
    while i < edits.len() {
        let first = line_of(edits[i].start);
        let mut last_end = edits[i].end;
        let mut j = i + 1;
        // Edits that touch the same line form one change.
        while j < edits.len() && line_of(edits[j].start) <= line_of(last_end) {
            last_end = last_end.max(edits[j].end);
            j += 1;
        }
        let a = line_start(first);
        let end_line = line_of(last_end);
        let b = line_start(end_line + 1).max(last_end);
        let mut new_text = String::new();
        let mut pos = a;
        for e in &edits[i..j] {
            new_text.push_str(&old[pos..e.start]);
            new_text.push_str(&e.content);
            pos = e.end;
        }
        new_text.push_str(&old[pos..b]);
        let old_count = old[a..b].split_inclusive('\n').count();
        changes.push((first, old_count, Vec::new(), new_text));
        i = j;
    }
    // 2. Trim lines the change leaves as they were, at both ends.
    let old_lines: Vec<&str> = old.split_inclusive('\n').collect();
    let mut trimmed: Vec<(usize, Vec<&str>, Vec<String>)> = Vec::new();
    for (first, count, _, new_text) in &changes {
        let olds: Vec<&str> = old_lines[*first..(*first + *count).min(old_lines.len())].to_vec();
        let mut news: Vec<String> = new_text.split_inclusive('\n').map(str::to_string).collect();
        let mut olds = olds;
        let mut start = *first;
        while !olds.is_empty() && !news.is_empty() && olds[0] == news[0] {
            olds.remove(0);
            news.remove(0);
            start += 1;
        }
        while !olds.is_empty()
            && !news.is_empty()
            && olds.last().copied() == news.last().map(String::as_str)
        {
            olds.pop();
            news.pop();
        }
        if olds.is_empty() && news.is_empty() {
            continue;
        }
        trimmed.push((start, olds, news));
    }
    if trimmed.is_empty() {
        return String::new();
    }
    // 3. Hunks: changes whose context (3 lines each side) touches merge.
    const CONTEXT: usize = 3;
    let mut out = format!("diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n");
    let mut delta: isize = 0;
    let mut k = 0;
    while k < trimmed.len() {
        let mut end = k + 1;
        while end < trimmed.len() {
            let prev_end = trimmed[end - 1].0 + trimmed[end - 1].1.len();
            if trimmed[end].0 > prev_end + 2 * CONTEXT {
                break;
            }
            end += 1;
        }
        let group = &trimmed[k..end];
        let first = group[0].0.saturating_sub(CONTEXT);
        let last_old = group[group.len() - 1].0 + group[group.len() - 1].1.len();
        let stop = (last_old + CONTEXT).min(old_lines.len());
        let mut body = String::new();
        let (mut old_n, mut new_n) = (0usize, 0usize);
        let mut line = first;
        let push = |body: &mut String, mark: char, text: &str| {
            body.push(mark);
            body.push_str(text);
            if !text.ends_with('\n') {
                body.push_str("\n\\ No newline at end of file\n");
            }
        };
        for (start, olds, news) in group {
            while line < *start {
                push(&mut body, ' ', old_lines[line]);
                old_n += 1;
                new_n += 1;
                line += 1;
            }
            for o in olds {
                push(&mut body, '-', o);
            }
            for n in news {
                push(&mut body, '+', n);
            }
            old_n += olds.len();
            new_n += news.len();
            line += olds.len();
        }
        while line < stop {
            push(&mut body, ' ', old_lines[line]);
            old_n += 1;
            new_n += 1;
            line += 1;
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
        (unified("f", old, &new), unified_from_edits("f", old, edits))
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
    }
}

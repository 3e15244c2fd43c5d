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

//! Quoting what an attacker may shape (service names, `image:`, `user:`, paths, Dockerfile
//! values) for each place it is printed: a terminal or CI log, Markdown, GitHub workflow
//! commands, SARIF URIs and diff headers.

use std::borrow::Cow;
use std::fmt::Write;

/// Characters that change how a terminal or a reader sees the text: C0 and C1 controls,
/// DEL, and the Unicode bidirectional overrides and isolates.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The text with every control character written visibly (`\n`, `\t`, `\r`, `\u{1b}`):
/// for text reports and messages on stderr, so no value can start a line, move the
/// cursor or colour the terminal.
pub fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if hidden(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Markdown text (a table cell or a list item): controls made visible, HTML characters
/// as entities (no tag, no autolink), `\\` and `|` escaped (a cell cannot be split) and
/// `](` broken up (no inline link or image). Backticks and emphasis are left: inside a
/// code span HTML is inert, and they only change how text looks.
pub fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut prev = ' ';
    for c in visible(s).chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '(' if prev == ']' => out.push_str("\\("),
            c => out.push(c),
        }
        prev = c;
    }
    out
}

/// A Markdown code span no content can close: fenced with one backtick more than the
/// longest run inside, padded when the content starts or ends with a backtick, with
/// controls made visible, `<>&` as entities and `|` escaped (GFM table cells split on it
/// even inside code spans).
pub fn md_code(s: &str) -> String {
    let body: String = visible(s)
        .chars()
        .map(|c| match c {
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '&' => "&amp;".to_string(),
            '|' => "\\|".to_string(),
            c => c.to_string(),
        })
        .collect();
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if body.starts_with('`') || body.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{body}{pad}{fence}")
}

/// The data of a GitHub workflow command: C0 controls other than line breaks dropped,
/// `%`, CR and LF percent-encoded, and no line of it starting a command (`::`).
pub fn gh_data(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut line_start = true;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if line_start && c == ':' && chars.peek() == Some(&':') {
            out.push(' ');
        }
        line_start = false;
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => {
                out.push_str("%0A");
                line_start = true;
            }
            c if hidden(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// A property of a GitHub workflow command (`file=`, `title=`).
pub fn gh_property(s: &str) -> String {
    gh_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// A relative path as an RFC 3986 URI reference: every byte outside the unreserved set
/// and `/` percent-encoded.
pub fn uri_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A path in a diff header, as git writes it with `core.quotePath` on: unchanged when it
/// holds no special byte, else in double quotes with C escapes (`\t`, `\n`, `\"`, `\\`)
/// and octal for other controls and every non-ASCII byte.
pub fn git_path(s: &str) -> Cow<'_, str> {
    let special = |b: u8| b < 0x20 || b == b'"' || b == b'\\' || b >= 0x7f;
    if !s.bytes().any(special) {
        return Cow::Borrowed(s);
    }
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'\x07' => out.push_str("\\a"),
            b'\x08' => out.push_str("\\b"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\x0b' => out.push_str("\\v"),
            b'\x0c' => out.push_str("\\f"),
            b'\r' => out.push_str("\\r"),
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b if special(b) => {
                let _ = write!(out, "\\{b:03o}");
            }
            b => out.push(b as char),
        }
    }
    out.push('"');
    Cow::Owned(out)
}

/// `prefix` + `path` quoted as git quotes it (the prefix goes inside the quotes).
pub fn git_prefixed(prefix: &str, path: &str) -> String {
    git_path(&format!("{prefix}{path}")).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_made_visible() {
        assert_eq!(
            visible("nginx\n::error::x\x1b[31m"),
            "nginx\\n::error::x\\u{1b}[31m"
        );
        assert_eq!(visible("a\u{202e}b"), "a\\u{202e}b");
        assert!(matches!(visible("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn code_spans_cannot_be_closed() {
        let s = "tick`</code><img src=x onerror=alert(1)>`";
        let c = md_code(s);
        assert_eq!(
            c,
            "`` tick`&lt;/code&gt;&lt;img src=x onerror=alert(1)&gt;` ``"
        );
        assert_eq!(md_code("db"), "`db`");
        assert_eq!(md_text("a|b<i>\n[x](y)"), "a\\|b&lt;i&gt;\\\\n[x]\\(y)");
    }

    #[test]
    fn workflow_commands_cannot_be_started() {
        assert_eq!(gh_data("x\n::error::y\x1b"), "x%0A ::error::y");
        assert_eq!(gh_data("::set-env"), " ::set-env");
        assert_eq!(gh_property("a:b,c"), "a%3Ab%2Cc");
    }

    #[test]
    fn uris_and_git_paths() {
        assert_eq!(uri_path("a b/c#d%é.yaml"), "a%20b/c%23d%25%C3%A9.yaml");
        assert_eq!(git_path("plain/compose.yaml"), "plain/compose.yaml");
        assert_eq!(
            git_path("a\tb\\c\"d\né"),
            "\"a\\tb\\\\c\\\"d\\n\\303\\251\""
        );
        assert_eq!(git_prefixed("a/", "x y"), "a/x y");
    }
}

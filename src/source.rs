//! Source text helpers: line/column lookup, line endings, and the style of a file.

/// Maps byte offsets to 1-based lines and columns.
pub struct LineIndex {
    /// Byte offset of each line's start (texts are under 2 GiB; the tree refuses larger).
    starts: Vec<u32>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut starts = Vec::with_capacity(text.matches('\n').count() + 1);
        starts.push(0);
        starts.extend(text.match_indices('\n').map(|(i, _)| (i + 1) as u32));
        LineIndex { starts }
    }

    /// 1-based line and 1-based column (in characters) of byte `offset`.
    pub fn line_col(&self, text: &str, offset: usize) -> (usize, usize) {
        let line = self
            .starts
            .partition_point(|&s| s as usize <= offset)
            .max(1);
        let start = self.starts[line - 1] as usize;
        let col = text
            .get(start..offset.min(text.len()))
            .map_or(0, |s| s.chars().count());
        (line, col + 1)
    }
}

/// Byte offset of the start of the line holding `pos`.
pub fn line_start(text: &str, pos: usize) -> usize {
    text[..pos].rfind('\n').map_or(0, |i| i + 1)
}

/// Byte offset just past the line break that ends the line holding `pos`, or the end of
/// the text when that line has no line break.
pub fn next_line_start(text: &str, pos: usize) -> usize {
    text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1)
}

/// The leading spaces of the line holding `pos`.
pub fn indent_of_line(text: &str, pos: usize) -> &str {
    let start = line_start(text, pos);
    let line = &text[start..];
    let n = line.len() - line.trim_start_matches(' ').len();
    &line[..n]
}

/// The line ending used around `pos`: that of the line before it, else the file's first.
pub fn eol_near(text: &str, pos: usize) -> &'static str {
    let before = &text[..pos.min(text.len())];
    if let Some(i) = before.rfind('\n') {
        return if i > 0 && before.as_bytes()[i - 1] == b'\r' {
            "\r\n"
        } else {
            "\n"
        };
    }
    match text.find('\n') {
        Some(i) if i > 0 && text.as_bytes()[i - 1] == b'\r' => "\r\n",
        _ => "\n",
    }
}

/// Whether only spaces precede `pos` on its line.
pub fn starts_line(text: &str, pos: usize) -> bool {
    text[line_start(text, pos)..pos].bytes().all(|b| b == b' ')
}

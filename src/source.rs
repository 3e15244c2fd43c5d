//! Source text helpers: line/column lookup, line endings, and the style of a file.

/// Maps byte offsets to 1-based lines and columns.
///
/// Only every 32nd line start is kept (a big file has hundreds of thousands of
/// lines); a lookup counts the line breaks from the nearest kept start, at most
/// 31 lines.
pub struct LineIndex {
    /// Byte offset of lines 0, STRIDE, 2 * STRIDE, ... (texts are under 256 MiB; the tree
    /// refuses larger).
    starts: Vec<u32>,
}

const STRIDE: usize = 32;

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut starts = Vec::with_capacity(text.len() / (STRIDE * 24) + 1);
        starts.push(0);
        starts.extend(
            memchr::memchr_iter(b'\n', text.as_bytes())
                .skip(STRIDE - 1)
                .step_by(STRIDE)
                .map(|i| (i + 1) as u32),
        );
        LineIndex { starts }
    }

    /// 1-based line and 1-based column (in characters) of byte `offset`.
    pub fn line_col(&self, text: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(text.len());
        let block = self
            .starts
            .partition_point(|&s| s as usize <= offset)
            .max(1)
            - 1;
        let from = self.starts[block] as usize;
        let bytes = &text.as_bytes()[from..offset];
        let within = memchr::memchr_iter(b'\n', bytes).count();
        let start = bytes
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(from, |i| from + i + 1);
        let col = text.get(start..offset).map_or(0, |s| s.chars().count());
        (block * STRIDE + within + 1, col + 1)
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

/// The length and a 64-bit hash of a text: what is kept of a file's original contents to
/// notice, before writing, that someone else changed the file since it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    len: usize,
    hash: u64,
}

impl Fingerprint {
    /// The length of the text, in bytes.
    pub fn byte_len(&self) -> usize {
        self.len
    }

    pub fn of(bytes: &[u8]) -> Fingerprint {
        use std::hash::Hasher;
        // Fixed keys: the same bytes give the same hash in every run.
        let mut h = std::hash::DefaultHasher::new();
        h.write(bytes);
        Fingerprint {
            len: bytes.len(),
            hash: h.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_agrees_with_counting() {
        let text: String = (0..200)
            .map(|i| format!("{}é\n", "x".repeat(i % 7)))
            .chain(["\r\nlast".to_string()])
            .collect();
        let index = LineIndex::new(&text);
        for (pos, _) in text.char_indices().chain([(text.len(), ' ')]) {
            let line = text[..pos].matches('\n').count() + 1;
            let start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
            let col = text[start..pos].chars().count() + 1;
            assert_eq!(index.line_col(&text, pos), (line, col), "at {pos}");
        }
    }
}

//! Builders for the few edits hardening needs: add a key to a service, append items to a
//! list, remove a key. Each returns plain [`Edit`]s in the file's own style (indentation,
//! sequence offset, flow or block, quotes, line endings, missing final newline), or `None`
//! when the layout is one we do not edit safely (the rule then reports without a fix).

use crate::document::{Document, dash_before};
use crate::edit::Edit;
use crate::source::{eol_near, line_start, next_line_start, starts_line};
use crate::yaml::{Kind, NodeId, Style};

/// A value to write under a new key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewValue {
    /// A scalar, already quoted as it must appear.
    Scalar(String),
    /// A list of plain items.
    List(Vec<String>),
}

/// The order in which one run writes new hardening keys (the rules' order).
const KEY_ORDER: &[&str] = &["user", "security_opt", "cap_drop", "cap_add", "userns_mode"];

pub struct Editor<'a> {
    doc: &'a Document,
}

impl<'a> Editor<'a> {
    pub fn new(doc: &'a Document) -> Editor<'a> {
        Editor { doc }
    }

    fn text(&self) -> &'a str {
        self.doc.text()
    }

    /// Quote a scalar with the file's preferred quote character.
    pub fn quoted(&self, s: &str) -> String {
        match self.doc.style.quote {
            '\'' => format!("'{}'", s.replace('\'', "''")),
            _ => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
        }
    }

    /// A plain-safe word as the file writes such values: quoted only in a file that quotes.
    pub fn quoted_if_file_quotes(&self, s: &str) -> String {
        if self.doc.style.quotes_values {
            self.quoted(s)
        } else {
            s.to_string()
        }
    }

    /// Where a new line can go after node `id` ends: the start of the next line, or the end
    /// of the text (then the new text must begin with a line break).
    fn after_node(&self, id: NodeId) -> usize {
        let text = self.text();
        let n = self.doc.tree.node(id);
        if let Kind::Scalar {
            style, keep: true, ..
        } = n.kind
            && style.is_block()
        {
            // Keep chomping: trailing blank lines belong to the value; go after them.
            let raw_end = self.doc.tree.raw_end(id);
            if raw_end >= text.len() {
                return text.len();
            }
            return line_start(text, raw_end);
        }
        next_line_start(text, n.end())
    }

    /// Add `key: value` as the last entry of mapping `map`.
    pub fn add_key(&self, map: NodeId, key: &str, value: &NewValue) -> Option<Edit> {
        let tree = &self.doc.tree;
        let node = tree.node(map);
        let Kind::Mapping { flow, entries } = node.kind else {
            return None;
        };
        let entries = tree.pairs(entries);
        if flow {
            let v = self.flow_value(value);
            return Some(match entries.last() {
                Some((_, last)) => Edit::insertion(tree.node(last).end(), format!(", {key}: {v}")),
                None => Edit::insertion(node.start() + 1, format!("{key}: {v}, ")),
            });
        }
        let text = self.text();
        let (first_key, _) = entries.first()?;
        let (_, last_value) = entries.last()?;
        let key_start = tree.node(first_key).start();
        if !starts_line(text, key_start) {
            return None;
        }
        let indent = &text[line_start(text, key_start)..key_start];
        let all: Vec<(NodeId, NodeId)> = entries.into_iter().collect();
        let key = self.key_like(&all, key);
        let key = key.as_str();
        if let Some(at) = self.before_later_keys(&all, key) {
            let eol = eol_near(text, at);
            let body = self.block_body(indent, key, value, eol);
            return Some(Edit::insertion(at, body).at_depth(indent.len()));
        }
        let mut at = self.after_node(last_value);
        if at == text.len() && !text.ends_with('\n') && self.ends_in_block_scalar(last_value) {
            // A block scalar that ends the file without a line break would gain one if we
            // wrote after it; write before the last key instead.
            let (last_key, _) = entries.last()?;
            let k = tree.node(last_key).start();
            if !starts_line(text, k) {
                return None;
            }
            at = line_start(text, k);
        }
        let eol = eol_near(text, at);
        let body = self.block_body(indent, key, value, eol);
        Some(Edit::insertion(at, at_end_of_text(text, at, body, eol)).at_depth(indent.len()))
    }

    fn block_body(&self, indent: &str, key: &str, value: &NewValue, eol: &str) -> String {
        let mut body = String::new();
        match value {
            NewValue::Scalar(s) => body.push_str(&format!("{indent}{key}: {s}{eol}")),
            NewValue::List(items) if self.doc.style.flow_lists => {
                body.push_str(&format!("{indent}{key}: [{}]{eol}", items.join(", ")));
            }
            NewValue::List(items) => {
                body.push_str(&format!("{indent}{key}:{eol}"));
                let pad = " ".repeat(self.doc.style.seq_offset);
                for item in items {
                    body.push_str(&format!("{indent}{pad}- {item}{eol}"));
                }
            }
        }
        body
    }

    /// `key` quoted the way the mapping quotes its keys (its `image` key, else its first).
    fn key_like(&self, entries: &[(NodeId, NodeId)], key: &str) -> String {
        let tree = &self.doc.tree;
        let model = entries
            .iter()
            .find(|(k, _)| tree.scalar(*k) == Some("image"))
            .or_else(|| entries.first());
        let style = model.and_then(|(k, _)| match tree.node(*k).kind {
            Kind::Scalar { style, .. } => Some(style),
            _ => None,
        });
        match style {
            Some(Style::DoubleQuoted) => format!("\"{key}\""),
            Some(Style::SingleQuoted) => format!("'{key}'"),
            _ => key.to_string(),
        }
    }

    /// Where a new hardening key goes so that the keys end in one order however many runs
    /// wrote them: before the trailing run of hardening keys that come after it.
    fn before_later_keys(&self, entries: &[(NodeId, NodeId)], key: &str) -> Option<usize> {
        let tree = &self.doc.tree;
        let text = self.text();
        let rank = |k: &str| {
            KEY_ORDER
                .iter()
                .position(|x| *x == k.trim_matches(['"', '\'']))
        };
        let mine = rank(key)?;
        let mut at = None;
        for (k, _) in entries.iter().rev() {
            match tree.scalar(*k).and_then(rank) {
                Some(r) if r > mine => {
                    let start = tree.node(*k).start();
                    if !starts_line(text, start) {
                        return None;
                    }
                    at = Some(line_start(text, start));
                }
                _ => break,
            }
        }
        at
    }

    /// Whether the text of node `id` ends with a block scalar (itself or its last descendant).
    fn ends_in_block_scalar(&self, id: NodeId) -> bool {
        let tree = &self.doc.tree;
        let mut id = id;
        for _ in 0..256 {
            match &tree.node(id).kind {
                Kind::Scalar { style, .. } => return style.is_block(),
                Kind::Mapping {
                    flow: false,
                    entries,
                } => match tree.pairs(*entries).last() {
                    Some((_, v)) => id = v,
                    None => return false,
                },
                Kind::Sequence { flow: false, items } => match tree.seq(*items).last() {
                    Some(&v) => id = v,
                    None => return false,
                },
                _ => return false,
            }
        }
        false
    }

    fn flow_value(&self, value: &NewValue) -> String {
        match value {
            NewValue::Scalar(s) => s.clone(),
            NewValue::List(items) => format!("[{}]", items.join(", ")),
        }
    }

    /// Append `items` to the sequence `seq`, in its own style.
    pub fn append_items(&self, seq: NodeId, items: &[String]) -> Option<Edit> {
        let tree = &self.doc.tree;
        let text = self.text();
        let node = tree.node(seq);
        let Kind::Sequence {
            flow,
            items: existing,
        } = node.kind
        else {
            return None;
        };
        let existing = tree.seq(existing);
        if flow {
            let quote = existing.last().and_then(|&l| match tree.node(l).kind {
                Kind::Scalar {
                    style: Style::DoubleQuoted,
                    ..
                } => Some('"'),
                Kind::Scalar {
                    style: Style::SingleQuoted,
                    ..
                } => Some('\''),
                _ => None,
            });
            let rendered: Vec<String> = items
                .iter()
                .map(|i| match quote {
                    Some(q) => format!("{q}{i}{q}"),
                    None => i.clone(),
                })
                .collect();
            return Some(match existing.last() {
                Some(&last) => {
                    Edit::insertion(tree.node(last).end(), format!(", {}", rendered.join(", ")))
                }
                None => Edit::insertion(node.start() + 1, rendered.join(", ")),
            });
        }
        let &first = existing.first()?;
        let &last = existing.last()?;
        let dash = dash_before(text, tree.node(first).start())?;
        if !starts_line(text, dash) {
            return None;
        }
        let indent = &text[line_start(text, dash)..dash];
        let at = self.after_node(last);
        let eol = eol_near(text, at);
        let body: String = items
            .iter()
            .map(|i| format!("{indent}- {i}{eol}"))
            .collect();
        Some(Edit::insertion(at, at_end_of_text(text, at, body, eol)).at_depth(indent.len() + 1))
    }

    /// Give a key written with an empty (null) value the list `items`.
    pub fn fill_null(&self, key: NodeId, items: &[String]) -> Option<Edit> {
        let text = self.text();
        let key_end = self.doc.tree.node(key).end();
        let colon = key_end + text[key_end..].find(':')?;
        Some(Edit::insertion(
            colon + 1,
            format!(" [{}]", items.join(", ")),
        ))
    }

    /// Remove entry `index` of mapping `map`, with its whole line(s) in block style.
    pub fn remove_entry(&self, map: NodeId, index: usize) -> Option<Edit> {
        let tree = &self.doc.tree;
        let text = self.text();
        let Kind::Mapping { flow, entries } = tree.node(map).kind else {
            return None;
        };
        let entries = tree.pairs(entries);
        if entries.len() < 2 {
            return None;
        }
        let (k, v) = entries.get(index)?;
        if flow {
            if index > 0 {
                let prev_end = tree.node(entries.get(index - 1)?.1).end();
                return Some(Edit::deletion(prev_end, tree.node(v).end()));
            }
            let next_key = tree.node(entries.get(1)?.0).start();
            return Some(Edit::deletion(tree.node(k).start(), next_key));
        }
        let key_start = tree.node(k).start();
        if !starts_line(text, key_start) {
            return None;
        }
        let start = line_start(text, key_start);
        let end = self.after_node(v);
        if end == text.len() && !text.ends_with('\n') {
            // The last line has no line break: take the break before it instead.
            let before = text[..start].trim_end_matches(['\n', '\r']).len();
            return Some(Edit::deletion(before, end));
        }
        Some(Edit::deletion(start, end))
    }
}

/// New lines inserted at the very end of a text without a final newline must start with a
/// line break and leave the file without one, as it was.
fn at_end_of_text(text: &str, at: usize, body: String, eol: &str) -> String {
    if at == text.len() && !text.is_empty() && !text.ends_with('\n') {
        let trimmed = body.strip_suffix(eol).unwrap_or(&body);
        format!("{eol}{trimmed}")
    } else {
        body
    }
}

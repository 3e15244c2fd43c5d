//! Parser events to a tree: [`build`] reads one part of a text (or all of it) into
//! [`Parts`], which `split.rs` joins or `Tree::parse_split` takes whole.

use std::borrow::Cow;
use std::collections::HashMap;

use granit_parser::{Event, Parser, ScalarStyle, StructureStyle, options};

use super::node::Nodes;
use super::{
    COMMENT_DIRECTIVE, IN_SOURCE, Kind, Limits, Meta, Node, NodeId, Span, Style, SyntaxError,
    ValueRef,
};

/// A node about to be added: kind, start, end, parser anchor id, tag, block-scalar raw end.
type NewNode = (Kind, usize, usize, usize, Option<String>, Option<usize>);

/// An open collection while the tree is built: its node and where its children start on
/// the pending stack.
struct Frame {
    id: NodeId,
    map: bool,
    base: usize,
}

fn style_of(s: ScalarStyle) -> Style {
    match s {
        ScalarStyle::Plain => Style::Plain,
        ScalarStyle::SingleQuoted => Style::SingleQuoted,
        ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
        ScalarStyle::Literal => Style::Literal,
        _ => Style::Folded,
    }
}

fn tag_text(tag: Option<&Cow<'_, granit_parser::Tag>>) -> Option<String> {
    let tag = tag?;
    let (handle, suffix) = (tag.handle(), tag.suffix());
    Some(if handle == "tag:yaml.org,2002:" {
        format!("!!{suffix}")
    } else if handle == "!" {
        format!("!{suffix}")
    } else {
        format!("{handle}{suffix}")
    })
}

fn push_value(values: &mut String, value: &str) -> Result<ValueRef, SyntaxError> {
    let start = values.len();
    values.push_str(value);
    if values.len() >= IN_SOURCE as usize {
        return Err(SyntaxError {
            line: 1,
            col: 1,
            message: "the file's values add up to 2 GiB or more; it is too large".into(),
        });
    }
    Ok(ValueRef {
        start: start as u32,
        len: value.len() as u32,
    })
}

/// Where the content of a block scalar really ends: after its last content line. A line of
/// spaces only is content when it has more spaces than the scalar's indentation (the extra
/// spaces are part of the value); with as many or fewer it is an empty line that chomping
/// may drop.
fn block_scalar_end(text: &str, start: usize, raw_end: usize) -> usize {
    let raw_end = raw_end.min(text.len());
    let line_of = |pos: usize| text[..pos].rfind('\n').map_or(0, |i| i + 1);
    // The indentation: the column of the first character that is not a space.
    let indent = text[start..raw_end]
        .find(|c: char| !matches!(c, ' ' | '\n' | '\r'))
        .map(|i| start + i - line_of(start + i));
    let mut end = start;
    let mut at = start;
    for line in text[start..raw_end].split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let spaces_only = body.bytes().all(|b| b == b' ');
        let width = at + body.len() - line_of(at);
        if !spaces_only || indent.is_some_and(|n| width > n) {
            end = at + body.len();
        }
        at += line.len();
    }
    end
}

/// The header (`|`, `>-`, `|2+` …) of the block scalar whose content starts at `start`:
/// the byte offset just past its line (before the line break), and whether it keeps
/// trailing blank lines (`+`).
fn block_scalar_header(text: &str, start: usize) -> (usize, bool) {
    let before = &text[..start];
    let Some(ind) = before.rfind(['|', '>']) else {
        return (start, false);
    };
    let line_end = text[ind..].find('\n').map_or(text.len(), |i| ind + i);
    let line_end = if line_end > ind && text.as_bytes()[line_end - 1] == b'\r' {
        line_end - 1
    } else {
        line_end
    };
    let header = text[ind + 1..line_end].split('#').next().unwrap_or("");
    (line_end.min(start.max(ind + 1)), header.contains('+'))
}

/// Whether a block scalar indicator (`|`, `>`) is at `pos`.
fn is_indicator(text: &str, pos: usize) -> bool {
    matches!(text.as_bytes().get(pos), Some(b'|' | b'>'))
}

/// The end of the line `pos` is on, before its line break (`\n` or `\r\n`).
fn line_end(text: &str, pos: usize) -> usize {
    let end = memchr::memchr(b'\n', &text.as_bytes()[pos..]).map_or(text.len(), |i| pos + i);
    if end > pos && text.as_bytes()[end - 1] == b'\r' {
        end - 1
    } else {
        end
    }
}

/// The side-table entry of node `id`, created when missing. Nodes get their metadata in
/// the order they are made, so this is almost always the last entry.
fn meta_mut(meta: &mut Vec<(NodeId, Meta)>, id: NodeId) -> &mut Meta {
    let at = match meta.last() {
        Some(&(last, _)) if last == id => meta.len() - 1,
        Some(&(last, _)) if last < id => {
            meta.push((id, Meta::default()));
            meta.len() - 1
        }
        None => {
            meta.push((id, Meta::default()));
            0
        }
        Some(_) => match meta.binary_search_by_key(&id, |e| e.0) {
            Ok(i) => i,
            Err(i) => {
                meta.insert(i, (id, Meta::default()));
                i
            }
        },
    };
    &mut meta[at].1
}

/// Where `value` sits verbatim in `text` near `start..end`, if it does.
fn verbatim(text: &str, value: &str, start: usize, end: usize, style: Style) -> Option<usize> {
    let base = text.as_ptr() as usize;
    let ptr = value.as_ptr() as usize;
    if !value.is_empty() && ptr >= base && ptr + value.len() <= base + text.len() {
        return Some(ptr - base);
    }
    match style {
        Style::Plain if text.get(start..end) == Some(value) => Some(start),
        Style::SingleQuoted | Style::DoubleQuoted
            if end >= start + 2 && text.get(start + 1..end - 1) == Some(value) =>
        {
            Some(start + 1)
        }
        _ => None,
    }
}

/// The tree of one part of a text, before it becomes a [`Tree`]. Offsets are into the
/// whole text.
pub(super) struct Parts {
    pub(super) nodes: Nodes,
    pub(super) keys: Vec<NodeId>,
    pub(super) far: Vec<(NodeId, NodeId)>,
    pub(super) seq_items: Vec<NodeId>,
    pub(super) values: String,
    pub(super) meta: Vec<(NodeId, Meta)>,
    pub(super) root: NodeId,
    pub(super) comments: Vec<(usize, usize)>,
    /// The node each anchor name last named, for the parts that follow.
    pub(super) anchors: HashMap<String, NodeId>,
    /// Aliases to anchors defined before this part: (alias node, anchor name).
    pub(super) unresolved: Vec<(NodeId, String)>,
}

/// Build the tree of `text[range]`, which starts at a line start. `depth` is the number of
/// collections that enclose the part in the whole text.
pub(super) fn build(
    text: &str,
    range: std::ops::Range<usize>,
    limits: Limits,
    depth: usize,
) -> Result<Parts, SyntaxError> {
    let base = range.start;
    let part = &text[range];
    let max_depth = limits.max_depth.saturating_sub(depth).max(1);
    let opts = options! {
        emit_anchor_events: true,
        // Read a block scalar that ends the file without a line break as libyaml,
        // PyYAML and Compose's go-yaml do, so the verifier sees the same values they do.
        block_scalar_eof_without_line_feed: true,
        // A run of comments is buffered while the parser looks ahead; real files have
        // long commented-out sections, and the text itself already bounds the count.
        max_buffered_comment_events: part.len() / 2 + 96,
        // Comments matter only for suppression directives; reading them costs about a
        // fifth of the parse, so they are collected only when a directive may exist.
        emit_comments: text.contains(COMMENT_DIRECTIVE),
        // A later part may use anchors an earlier part defines.
        emit_unresolved_aliases: base > 0,
        block_nesting_limit: max_depth,
        flow_nesting_limit: max_depth,
    };
    // Real compose files have about one node per 16 bytes. Capacity that is never
    // touched costs no memory, so reserve generously and never copy the vector; the
    // first part reserves for the parts that will be appended to it.
    let room = if base == 0 { text.len() } else { part.len() };
    let mut nodes = Nodes::with_capacity(room / 10 + 16);
    let mut keys: Vec<NodeId> = Vec::with_capacity(room / 24 + 16);
    let mut far: Vec<(NodeId, NodeId)> = Vec::new();
    let mut seq_items: Vec<NodeId> = Vec::new();
    let mut pending: Vec<NodeId> = Vec::new();
    let mut comments = Vec::new();
    let mut values = String::new();
    let mut meta: Vec<(NodeId, Meta)> = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, NodeId> = HashMap::new();
    let mut names: HashMap<String, NodeId> = HashMap::new();
    let mut unresolved: Vec<(NodeId, String)> = Vec::new();
    let mut root: Option<NodeId> = None;
    let mut documents = 0usize;
    let mut last_node: Option<NodeId> = None;
    let limits = Limits {
        max_depth,
        ..limits
    };

    for item in Parser::new_from_str_with_options(part, opts) {
        let (event, span) = item.map_err(|e| SyntaxError {
            line: e.marker().line(),
            col: e.marker().col() + 1,
            message: e.info(),
        })?;
        let range = span
            .byte_range()
            .map_or(base..base, |r| r.start + base..r.end + base);
        let (line, col) = (span.start.line(), span.start.col());
        let made: Option<NewNode> = match event {
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    return Err(SyntaxError {
                        line,
                        col: col + 1,
                        message:
                            "a second YAML document starts here; compose files hold exactly one"
                                .into(),
                    });
                }
                None
            }
            Event::Comment(..) => {
                comments.push((range.start, range.end));
                None
            }
            Event::Anchor(id, name) => {
                if let Some(&n) = anchors.get(&id) {
                    names.insert(name.to_string(), n);
                    meta_mut(&mut meta, n).anchor = Some(name.into_owned());
                }
                None
            }
            Event::UnresolvedAlias(name) => {
                // Named by an earlier part; joined up when the parts are.
                unresolved.push((nodes.len() as NodeId, name.into_owned()));
                Some((
                    Kind::Alias {
                        target: NodeId::MAX,
                    },
                    range.start,
                    range.end,
                    0,
                    None,
                    None,
                ))
            }
            Event::Scalar(value, style, anchor, tag) => {
                let style = style_of(style);
                let (mut start, mut end) = (range.start, range.end);
                let (mut keep, mut raw_end) = (false, range.end);
                if style.is_block() && value.is_empty() && is_indicator(text, start) {
                    // The parser starts an empty block scalar at its indicator when the
                    // text ends there, and at the next token otherwise: start it after its
                    // header line either way, so a part reads as it does in the whole text.
                    start = line_end(text, start);
                    raw_end = raw_end.max(start);
                }
                if style.is_block() {
                    let (header_end, keeps) = block_scalar_header(text, start);
                    end = block_scalar_end(text, start, raw_end);
                    keep = keeps;
                    if end == start {
                        // No content: the value ends with its header line.
                        start = header_end;
                        end = header_end;
                        keep = false;
                    }
                } else if start == end && style == Style::Plain {
                    // An empty (null) node: the parser places it at the next token.
                    // A value sits right after its key; an empty explicit key (`? `)
                    // right after whatever came before it.
                    if let Some(frame) = stack.last().filter(|f| f.map) {
                        if (pending.len() - frame.base) % 2 == 1 {
                            let k = *pending.last().expect("a pending key");
                            start = nodes.end(k) as usize;
                            end = start;
                        } else if let Some(prev) = last_node {
                            start = (nodes.end(prev) as usize).min(start);
                            end = start;
                        }
                    }
                }
                let value_ref = match (style.is_block(), value.is_empty()) {
                    (_, true) => ValueRef {
                        start: 0,
                        len: IN_SOURCE,
                    },
                    (false, false) => match verbatim(text, &value, start, end, style) {
                        Some(at) => ValueRef {
                            start: at as u32,
                            len: value.len() as u32 | IN_SOURCE,
                        },
                        None => push_value(&mut values, &value)?,
                    },
                    (true, false) => push_value(&mut values, &value)?,
                };
                let kind = Kind::Scalar {
                    value: value_ref,
                    style,
                    keep,
                };
                // The parser's span may end in the indentation of the next line; what
                // matters is the line the kept blank lines run up to.
                let raw = keep.then(|| {
                    let line = text[..raw_end].rfind('\n').map_or(0, |i| i + 1);
                    if text[line..raw_end].bytes().all(|b| b == b' ') {
                        line
                    } else {
                        raw_end
                    }
                });
                Some((kind, start, end, anchor, tag_text(tag.as_ref()), raw))
            }
            Event::SequenceStart(style, anchor, tag) => {
                let kind = Kind::Sequence {
                    flow: style == StructureStyle::Flow,
                    items: Span { start: 0, len: 0 },
                };
                let tag = tag_text(tag.as_ref());
                Some((kind, range.start, range.end, anchor, tag, None))
            }
            Event::MappingStart(style, anchor, tag) => {
                let kind = Kind::Mapping {
                    flow: style == StructureStyle::Flow,
                    entries: Span { start: 0, len: 0 },
                };
                let tag = tag_text(tag.as_ref());
                Some((kind, range.start, range.end, anchor, tag, None))
            }
            Event::Alias(id) => {
                let Some(&target) = anchors.get(&id) else {
                    return Err(SyntaxError {
                        line,
                        col: col + 1,
                        message: "alias refers to an unknown anchor".into(),
                    });
                };
                Some((
                    Kind::Alias { target },
                    range.start,
                    range.end,
                    0,
                    None,
                    None,
                ))
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = stack.pop() else { continue };
                let children = &pending[frame.base..];
                let last = children.last().copied();
                let run = if frame.map {
                    let start = keys.len() as u32;
                    for c in children.chunks_exact(2) {
                        keys.push(c[0]);
                        if c[1] != c[0] + 1 {
                            far.push((c[0], c[1]));
                        }
                    }
                    Span {
                        start,
                        len: keys.len() as u32 - start,
                    }
                } else {
                    let start = seq_items.len() as u32;
                    seq_items.extend_from_slice(children);
                    Span {
                        start,
                        len: children.len() as u32,
                    }
                };
                pending.truncate(frame.base);
                let _ = nodes.set_span(frame.id, run);
                let end = if nodes.is_flow(frame.id) {
                    range.end as u32
                } else {
                    last.map_or(nodes.start(frame.id), |l| nodes.end(l))
                };
                nodes.set_end(frame.id, end);
                last_node = Some(frame.id);
                None
            }
            _ => None,
        };
        let Some((kind, start, end, anchor_id, tag, raw_end)) = made else {
            continue;
        };
        if nodes.len() >= limits.max_nodes {
            return Err(SyntaxError {
                line,
                col: col + 1,
                message: format!(
                    "more than {} YAML nodes; the file is too large",
                    limits.max_nodes
                ),
            });
        }
        let collection = match kind {
            Kind::Mapping { .. } => Some(true),
            Kind::Sequence { .. } => Some(false),
            _ => None,
        };
        let id = nodes.len() as NodeId;
        nodes.push(Node {
            kind,
            start: start as u32,
            end: end as u32,
        });
        if tag.is_some() || raw_end.is_some() {
            let m = meta_mut(&mut meta, id);
            m.tag = tag;
            m.raw_end = raw_end.map(|r| r as u32);
        }
        if anchor_id != 0 {
            anchors.insert(anchor_id, id);
        }
        match stack.last() {
            None => root = Some(id),
            Some(_) => pending.push(id),
        }
        if let Some(map) = collection {
            if stack.len() >= limits.max_depth {
                return Err(SyntaxError {
                    line,
                    col: col + 1,
                    message: format!("collections nest deeper than {} levels", limits.max_depth),
                });
            }
            stack.push(Frame {
                id,
                map,
                base: pending.len(),
            });
        }
        last_node = Some(id);
    }
    let Some(root) = root else {
        return Err(SyntaxError {
            line: 1,
            col: 1,
            message: "the file holds no YAML content".into(),
        });
    };
    // Values that are not the node after their key, in key order for lookups.
    far.sort_unstable();
    Ok(Parts {
        nodes,
        keys,
        far,
        seq_items,
        values,
        meta,
        root,
        comments,
        anchors: names,
        unresolved,
    })
}

//! A read-only, span-aware YAML tree built from `granit-parser` events.
//!
//! Every node keeps the byte range of its source text, so rules can point at it
//! and the editor can splice new text next to it without re-serialising anything.
//! Anchors and aliases are kept as they are written (an alias is a node that
//! points at its target); merge keys are resolved on demand by the compose view.
//!
//! The tree is built for size: a node is stored in 12 bytes (28-bit byte offsets, its kind
//! in the spare bits, see `Packed`), the children of every collection sit in two shared
//! arenas, a scalar whose text is written verbatim in
//! the source points into it instead of being copied, and anchors and tags live in a side
//! table. Line and column are worked out from the byte offset when a message needs them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::Hasher;

use granit_parser::{Event, Parser, ScalarStyle, StructureStyle, options};

/// Index of a node in the tree.
pub type NodeId = u32;

/// How a scalar is written in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
    Folded,
}

impl Style {
    pub fn is_block(self) -> bool {
        matches!(self, Style::Literal | Style::Folded)
    }
}

/// A run of children in one of the tree's arenas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    start: u32,
    len: u32,
}

impl Span {
    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.start as usize + self.len as usize
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Scalar {
        /// The scalar's text after escapes and folding.
        value: ValueRef,
        style: Style,
        /// Block scalars with keep chomping (`|+`, `>+`): trailing blank lines are content.
        keep: bool,
    },
    Mapping {
        flow: bool,
        /// Where the mapping's keys sit; see [`Tree::entries`] and [`Entries`].
        entries: Span,
    },
    Sequence {
        flow: bool,
        /// Where the sequence's items sit; see [`Tree::items`].
        items: Span,
    },
    Alias {
        target: NodeId,
    },
}

/// Where a scalar's text is: in the source (most scalars are written as they read) or in
/// the tree's buffer of rewritten values (escapes, folded lines, block scalars).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueRef {
    start: u32,
    /// Length; the top bit set means the text is in the source.
    len: u32,
}

const IN_SOURCE: u32 = 1 << 31;

impl ValueRef {
    fn range(self) -> std::ops::Range<usize> {
        let len = (self.len & !IN_SOURCE) as usize;
        self.start as usize..self.start as usize + len
    }

    fn in_source(self) -> bool {
        self.len & IN_SOURCE != 0
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Node {
    pub kind: Kind,
    start: u32,
    end: u32,
}

impl Node {
    /// First byte of the node's content (the `{`/`[` of a flow collection, the first key of a
    /// block mapping, the first `-` of a block sequence).
    pub fn start(&self) -> usize {
        self.start as usize
    }

    /// One past the last byte of the node's content. Block scalars end after their last
    /// non-blank content line (before the line break); block collections end where their last
    /// child ends.
    pub fn end(&self) -> usize {
        self.end as usize
    }
}

/// Texts from this size on are refused: node offsets keep four bits of each `u32` for
/// the node's kind.
const MAX_TEXT: usize = 1 << POS_BITS;
const POS_BITS: u32 = 28;
const POS_MASK: u32 = (1 << POS_BITS) - 1;
/// In `Packed::start`: the node's variant (two bits) and its `flow` or `keep` flag.
const FLAG: u32 = 1 << 30;
/// `Packed::data` of a scalar whose value is its source text, or the text inside its quotes.
const WHOLE: u32 = u32::MAX;
const INNER: u32 = u32::MAX - 1;

/// A [`Node`] in 12 bytes, as the tree stores it (a big file has hundreds of thousands).
/// `start` and `end` hold 28-bit offsets; the bits above hold the variant, a flag and a
/// scalar's style. `data` is an alias's target, a collection's index into
/// [`Nodes::spans`], or for a scalar [`WHOLE`], [`INNER`] or an index into [`Nodes::refs`].
#[derive(Debug, Clone, Copy)]
struct Packed {
    start: u32,
    end: u32,
    data: u32,
}

/// The variants a [`Packed`] node holds in bits 28-29 of `start`.
const SCALAR: u32 = 0;
const MAPPING: u32 = 1;
const SEQUENCE: u32 = 2;
const ALIAS: u32 = 3;

impl Packed {
    #[inline]
    fn variant(self) -> u32 {
        (self.start >> POS_BITS) & 3
    }

    #[inline]
    fn is_collection(self) -> bool {
        matches!(self.variant(), MAPPING | SEQUENCE)
    }
}

/// The nodes of a tree, packed, with the side tables that hold what does not fit.
#[derive(Debug, Clone, Default)]
struct Nodes {
    packed: Vec<Packed>,
    /// Every collection's run of children, in the order the collections start.
    spans: Vec<Span>,
    /// The values of scalars that are not simply their source text.
    refs: Vec<ValueRef>,
}

fn style_bits(style: Style) -> u32 {
    match style {
        Style::Plain => 0,
        Style::SingleQuoted => 1,
        Style::DoubleQuoted => 2,
        Style::Literal => 3,
        Style::Folded => 4,
    }
}

fn style_from(bits: u32) -> Style {
    match bits & 7 {
        0 => Style::Plain,
        1 => Style::SingleQuoted,
        2 => Style::DoubleQuoted,
        3 => Style::Literal,
        _ => Style::Folded,
    }
}

impl Nodes {
    fn with_capacity(n: usize) -> Nodes {
        Nodes {
            packed: Vec::with_capacity(n),
            spans: Vec::new(),
            refs: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.packed.len()
    }

    /// Store `node` (offsets under [`MAX_TEXT`]).
    fn push(&mut self, node: Node) {
        let (start, end) = (node.start, node.end);
        let (variant, flag, style, data) = match node.kind {
            Kind::Scalar { value, style, keep } => {
                let r = value.range();
                let data = if value.in_source() && r == (start as usize..end as usize) {
                    WHOLE
                } else if value.in_source()
                    && end >= start + 2
                    && r == (start as usize + 1..end as usize - 1)
                {
                    INNER
                } else {
                    self.refs.push(value);
                    self.refs.len() as u32 - 1
                };
                (SCALAR, keep, style_bits(style), data)
            }
            Kind::Mapping { flow, entries } => {
                self.spans.push(entries);
                (MAPPING, flow, 0, self.spans.len() as u32 - 1)
            }
            Kind::Sequence { flow, items } => {
                self.spans.push(items);
                (SEQUENCE, flow, 0, self.spans.len() as u32 - 1)
            }
            Kind::Alias { target } => (ALIAS, false, 0, target),
        };
        self.packed.push(Packed {
            start: start | variant << POS_BITS | if flag { FLAG } else { 0 },
            end: end | style << POS_BITS,
            data,
        });
    }

    #[inline]
    fn get(&self, id: NodeId) -> Node {
        self.decode(self.packed[id as usize])
    }

    #[inline]
    fn decode(&self, p: Packed) -> Node {
        let (start, end) = (p.start & POS_MASK, p.end & POS_MASK);
        let flag = p.start & FLAG != 0;
        let kind = match p.variant() {
            SCALAR => Kind::Scalar {
                value: self.value(p),
                style: style_from(p.end >> POS_BITS),
                keep: flag,
            },
            MAPPING => Kind::Mapping {
                flow: flag,
                entries: self.spans[p.data as usize],
            },
            SEQUENCE => Kind::Sequence {
                flow: flag,
                items: self.spans[p.data as usize],
            },
            _ => Kind::Alias { target: p.data },
        };
        Node { kind, start, end }
    }

    /// Where the value of scalar `p` is.
    #[inline]
    fn value(&self, p: Packed) -> ValueRef {
        let (start, end) = (p.start & POS_MASK, p.end & POS_MASK);
        match p.data {
            WHOLE => ValueRef {
                start,
                len: (end - start) | IN_SOURCE,
            },
            INNER => ValueRef {
                start: start + 1,
                len: (end - start - 2) | IN_SOURCE,
            },
            i => self.refs[i as usize],
        }
    }

    fn start(&self, id: NodeId) -> u32 {
        self.packed[id as usize].start & POS_MASK
    }

    fn end(&self, id: NodeId) -> u32 {
        self.packed[id as usize].end & POS_MASK
    }

    fn set_end(&mut self, id: NodeId, end: u32) {
        let p = &mut self.packed[id as usize];
        p.end = (p.end & !POS_MASK) | end;
    }

    /// Set the children of collection `id`; `None` when it is not a collection.
    fn set_span(&mut self, id: NodeId, run: Span) -> Option<()> {
        let p = self.packed[id as usize];
        if !p.is_collection() {
            return None;
        }
        self.spans[p.data as usize] = run;
        Some(())
    }

    /// The pairs of mapping `id`, when it is one.
    #[inline]
    fn mapping_entries(&self, id: NodeId) -> Option<Span> {
        let p = self.packed[id as usize];
        (p.variant() == MAPPING).then(|| self.spans[p.data as usize])
    }

    /// The items of sequence `id`, when it is one.
    #[inline]
    fn sequence_items(&self, id: NodeId) -> Option<Span> {
        let p = self.packed[id as usize];
        (p.variant() == SEQUENCE).then(|| self.spans[p.data as usize])
    }

    /// The value and style of scalar `id`, when it is one (what the hot lookups need,
    /// without decoding the whole node).
    #[inline]
    fn scalar(&self, id: NodeId) -> Option<(ValueRef, Style)> {
        let p = self.packed[id as usize];
        if p.variant() != SCALAR {
            return None;
        }
        Some((self.value(p), style_from(p.end >> POS_BITS)))
    }

    /// The children of `id` as the expansion walk sees them: (variant, run or target).
    #[inline]
    fn children(&self, id: NodeId) -> (u32, Span) {
        let p = self.packed[id as usize];
        match p.variant() {
            SCALAR => (SCALAR, Span { start: 0, len: 0 }),
            ALIAS => (
                ALIAS,
                Span {
                    start: p.data,
                    len: 1,
                },
            ),
            v => (v, self.spans[p.data as usize]),
        }
    }

    #[inline]
    fn alias_target(&self, id: NodeId) -> Option<NodeId> {
        let p = self.packed[id as usize];
        (p.variant() == ALIAS).then_some(p.data)
    }

    fn is_flow(&self, id: NodeId) -> bool {
        let p = self.packed[id as usize];
        p.is_collection() && p.start & FLAG != 0
    }

    /// Make node `id` an alias of `target`.
    fn set_alias(&mut self, id: NodeId, target: NodeId) {
        let p = &mut self.packed[id as usize];
        p.start = (p.start & POS_MASK) | ALIAS << POS_BITS;
        p.data = target;
    }

    /// Add the nodes of `next`, whose ids start at `self.len()`, shifting what they point
    /// at: node ids, pair and item runs, and values in the buffer of rewritten values.
    fn append(&mut self, next: Nodes, pair_off: u32, item_off: u32, value_off: u32) {
        let off = self.packed.len() as u32;
        // The side tables keep their order, so an index into them moves by a fixed amount.
        let (span_off, ref_off) = (self.spans.len() as u32, self.refs.len() as u32);
        self.refs.extend(next.refs.iter().map(|&r| {
            if r.in_source() {
                r
            } else {
                ValueRef {
                    start: r.start + value_off,
                    ..r
                }
            }
        }));
        self.spans.extend_from_slice(&next.spans);
        for p in &next.packed {
            if p.is_collection() {
                let run = &mut self.spans[(span_off + p.data) as usize];
                run.start += if p.variant() == MAPPING {
                    pair_off
                } else {
                    item_off
                };
            }
        }
        append_from_back(&mut self.packed, next.packed, |mut p| {
            match p.variant() {
                SCALAR if p.data < INNER => p.data += ref_off,
                SCALAR => {}
                MAPPING | SEQUENCE => p.data += span_off,
                _ if p.data != NodeId::MAX => p.data += off,
                _ => {}
            }
            p
        });
    }
}

/// The value of key `k`: the node right after it, unless `far` (in key order) says
/// otherwise (a key that is a collection, `? [a, b]: c`, is followed by its items).
#[inline]
fn value_of(k: NodeId, far: &[(NodeId, NodeId)]) -> NodeId {
    if far.is_empty() {
        return k + 1;
    }
    match far.binary_search_by_key(&k, |&(key, _)| key) {
        Ok(i) => far[i].1,
        Err(_) => k + 1,
    }
}

/// The `(key, value)` entries of one mapping, in source order. Only keys are stored: a
/// value is almost always the node made right after its key, which halves what a big
/// file's mappings take.
#[derive(Clone, Copy, Debug)]
pub struct Entries<'t> {
    keys: &'t [NodeId],
    far: &'t [(NodeId, NodeId)],
}

impl<'t> Entries<'t> {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Entry `i`.
    pub fn get(&self, i: usize) -> Option<(NodeId, NodeId)> {
        self.keys.get(i).map(|&k| (k, value_of(k, self.far)))
    }

    pub fn first(&self) -> Option<(NodeId, NodeId)> {
        self.get(0)
    }

    pub fn last(&self) -> Option<(NodeId, NodeId)> {
        self.get(self.keys.len().wrapping_sub(1))
    }

    pub fn iter(&self) -> EntryIter<'t> {
        EntryIter {
            keys: self.keys.iter(),
            far: self.far,
        }
    }
}

impl<'t> IntoIterator for Entries<'t> {
    type Item = (NodeId, NodeId);
    type IntoIter = EntryIter<'t>;
    fn into_iter(self) -> EntryIter<'t> {
        self.iter()
    }
}

/// The `(key, value)` entries of a mapping, one after another.
#[derive(Clone, Debug)]
pub struct EntryIter<'t> {
    keys: std::slice::Iter<'t, NodeId>,
    far: &'t [(NodeId, NodeId)],
}

impl Iterator for EntryIter<'_> {
    type Item = (NodeId, NodeId);
    #[inline]
    fn next(&mut self) -> Option<(NodeId, NodeId)> {
        self.keys.next().map(|&k| (k, value_of(k, self.far)))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.keys.size_hint()
    }
}

impl DoubleEndedIterator for EntryIter<'_> {
    fn next_back(&mut self) -> Option<(NodeId, NodeId)> {
        self.keys.next_back().map(|&k| (k, value_of(k, self.far)))
    }
}

impl ExactSizeIterator for EntryIter<'_> {}

/// Move the items of `from` to the end of `to`, each through `f`. The copy runs from the
/// back in chunks and gives each chunk's memory back once it is copied, so appending a big
/// part of a tree never holds two copies of it.
fn append_from_back<T: Copy>(to: &mut Vec<T>, mut from: Vec<T>, f: impl Fn(T) -> T) {
    const CHUNK: usize = 1 << 14;
    let (base, n) = (to.len(), from.len());
    to.reserve_exact(n);
    let mut left = n;
    while left > 0 {
        let start = left.saturating_sub(CHUNK);
        let spare = to.spare_capacity_mut();
        for (slot, &x) in spare[start..left].iter_mut().zip(&from[start..left]) {
            slot.write(f(x));
        }
        from.truncate(start);
        from.shrink_to_fit();
        left = start;
    }
    // SAFETY: the chunks cover 0..n, so every slot of base..base + n was written above,
    // and `T: Copy` has no drop that skipping could miss.
    unsafe { to.set_len(base + n) };
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
struct Meta {
    anchor: Option<String>,
    tag: Option<String>,
    /// For block scalars with keep chomping: where the parser's span ends (after the
    /// trailing blank lines that belong to the value).
    raw_end: Option<u32>,
}

/// The prefix of the only comments the tool reads (`# compose-harden: ignore[...]`).
pub const COMMENT_DIRECTIVE: &str = "compose-harden:";

/// A parsed single-document YAML stream, with the text it was parsed from.
#[derive(Debug, Clone)]
pub struct Tree {
    text: String,
    nodes: Nodes,
    /// Every mapping's keys, one run per mapping (see [`Entries`] for their values).
    keys: Vec<NodeId>,
    /// The values of keys whose value is not the node after them, by key.
    far: Vec<(NodeId, NodeId)>,
    /// Every sequence's items, one run per sequence.
    seq_items: Vec<NodeId>,
    /// The text of scalars not written verbatim in the source, back to back.
    values: String,
    /// Anchors, tags and block-scalar ends of the few nodes that have them, by node id.
    meta: Vec<(NodeId, Meta)>,
    pub root: NodeId,
    /// Byte ranges of every comment (`#` to end of line, line break excluded), collected
    /// only when the text contains [`COMMENT_DIRECTIVE`].
    pub comments: Vec<(usize, usize)>,
}

/// A YAML syntax error, or input this tool refuses to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Limits that keep hostile input from exhausting memory or the stack.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Deepest nesting of collections.
    pub max_depth: usize,
    /// Most nodes one document may have.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 128,
            max_nodes: 2_000_000,
        }
    }
}

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

/// 1-based line and 1-based column (in characters) of byte `pos` in `text`.
pub fn line_col_of(text: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(text.len());
    let before = &text.as_bytes()[..pos];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let col = text.get(start..pos).map_or(0, |s| s.chars().count());
    (line, col + 1)
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

impl Tree {
    /// Parse `text` (one YAML document; a leading BOM is allowed). The tree keeps the text.
    ///
    /// Large files are read in parallel: the `services:` mapping is cut at a service key
    /// near the middle, each part is parsed on its own core, and the parts are joined. The
    /// cut is taken only where it cannot change what the text means (see `split_points`);
    /// whenever a part does not read cleanly, the whole text is parsed in one go instead.
    pub fn parse(text: String, limits: Limits) -> Result<Tree, SyntaxError> {
        Self::parse_split(text, limits, PARALLEL_MIN)
    }

    /// [`Tree::parse`], reading in parallel from `min` bytes on (tests lower it).
    pub fn parse_split(text: String, limits: Limits, min: usize) -> Result<Tree, SyntaxError> {
        if text.len() >= MAX_TEXT {
            return Err(SyntaxError {
                line: 1,
                col: 1,
                message: "the file is 256 MiB or more; it is too large".into(),
            });
        }
        let cut = if text.len() >= min {
            split_points(&text)
        } else {
            None
        };
        // Parts that together pass the node limit are read again whole, so the error
        // names the place the whole reading stops at.
        let parts = cut
            .and_then(|(p, q)| parse_in_parts(&text, p, q, limits))
            .filter(|parts| parts.nodes.len() < limits.max_nodes);
        let parts = match parts {
            Some(parts) => parts,
            None => build(&text, 0..text.len(), limits, 0)?,
        };
        let tree = Tree {
            text,
            nodes: parts.nodes,
            keys: parts.keys,
            far: parts.far,
            seq_items: parts.seq_items,
            values: parts.values,
            meta: parts.meta,
            root: parts.root,
            comments: parts.comments,
        };
        tree.check_duplicate_keys()?;
        Ok(tree)
    }
}

/// Whether `line` (without its line break) is a top-level `services:` key with its value on
/// the following lines.
fn is_services_line(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("services:") else {
        return false;
    };
    let rest = rest.trim_start_matches(' ');
    rest.is_empty() || (rest.starts_with('#') && line.len() > "services:".len() + rest.len())
}

/// Whether a line's content starts with a plain or quoted key: not an explicit key (`?`), an
/// empty key (`:`), a flow collection, an anchor, a tag or an alias, whose reading can
/// depend on what came before.
fn starts_key(content: &str) -> bool {
    content
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'"' | b'\''))
}

/// Where a compose file can be cut so that each part reads, on its own, exactly as it reads
/// in the whole text: `p` starts a line that holds a key of the top-level `services:` block
/// mapping, written at that mapping's indentation, about halfway through the text; `q` starts
/// the first top-level line after the mapping (or is the end of the text).
///
/// Nothing else may change how the later parts read, so there is no cut when the text has
/// directives (`%TAG` changes what tags mean), document markers after `services:`, or
/// anything but a plain or quoted key at a cut (see [`starts_key`]). A cut inside a quoted scalar or flow collection that spans
/// lines leaves a part that does not parse, and the caller then parses the whole text.
fn split_points(text: &str) -> Option<(usize, usize)> {
    let mut services = false;
    let mut indent: Option<usize> = None;
    let mut q: Option<usize> = None;
    let bytes = text.as_bytes();
    let mut next = 0;
    while next < bytes.len() {
        let start = next;
        next = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |i| start + i + 1);
        // Inside `services:` an indented line can change nothing here: skip it unread.
        if indent.is_some() && bytes[start] == b' ' {
            continue;
        }
        let l = text[start..next].trim_end_matches(['\n', '\r']);
        if l.starts_with('%') {
            return None;
        }
        let content = l.trim_start_matches(' ');
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if !services {
            services = is_services_line(l);
            continue;
        }
        if l.starts_with("---") || l.starts_with("...") {
            return None;
        }
        let ind = l.len() - content.len();
        match indent {
            None if ind == 0 || content.starts_with(['-', '\t', '?']) => return None,
            None => indent = Some(ind),
            Some(_) if ind == 0 && q.is_none() => {
                if !starts_key(content) {
                    return None;
                }
                q = Some(start);
            }
            Some(_) => {}
        }
    }
    let indent = indent?;
    let q = q.unwrap_or(text.len());
    // The first line from the middle on that starts a service: `indent` spaces, then a name.
    let mut at = text.get(..q / 2)?.rfind('\n').map_or(0, |i| i + 1);
    while at < q {
        let line = &text[at..];
        let end = line.find('\n').map_or(text.len(), |i| at + i + 1);
        let spaces = line.bytes().take_while(|&b| b == b' ').count();
        if spaces == indent && starts_key(&line[indent..]) {
            return Some((at, q));
        }
        at = end;
    }
    None
}

/// Parse `text` in parts cut at `p` and `q` (see [`split_points`]) on two cores and join
/// them; `None` when a part does not read cleanly or the parts do not fit together.
fn parse_in_parts(text: &str, p: usize, q: usize, limits: Limits) -> Option<Parts> {
    let ((a, c), b) = rayon::join(
        || {
            let a = build(text, 0..p, limits, 0).ok();
            let c = (q < text.len()).then(|| build(text, q..text.len(), limits, 0).ok());
            (a, c)
        },
        // The services part sits inside two collections (the top level and `services:`);
        // its own top level stands for the second.
        || build(text, p..q, limits, 1).ok(),
    );
    let (mut a, b) = (a?, b?);
    // The services mapping: the value of the last top-level key, written as a block.
    let (key, services) = a.block_entries(a.root)?.last()?;
    if a.scalar(text, key) != Some("services") || a.block_entries(services).is_none() {
        return None;
    }
    let column = |parts: &Parts, map: NodeId| {
        let (first, _) = parts.block_entries(map)?.first()?;
        let start = parts.nodes.start(first) as usize;
        let line = text[..start].rfind('\n').map_or(0, |i| i + 1);
        text[line..start]
            .bytes()
            .all(|b| b == b' ')
            .then_some(start - line)
    };
    if column(&a, services)? != column(&b, b.root)? || b.has_meta(b.root) {
        return None;
    }
    a.append_entries(b, services)?;
    if let Some(c) = c {
        let c = c?;
        if column(&c, c.root)? != 0 || c.has_meta(c.root) {
            return None;
        }
        let root = a.root;
        a.append_entries(c, root)?;
    }
    Some(a)
}

impl Parts {
    /// The entries of `id` when it is a block mapping.
    fn block_entries(&self, id: NodeId) -> Option<Entries<'_>> {
        if id as usize >= self.nodes.len() {
            return None;
        }
        match self.nodes.get(id).kind {
            Kind::Mapping {
                flow: false,
                entries,
            } => Some(Entries {
                keys: &self.keys[entries.range()],
                far: &self.far,
            }),
            _ => None,
        }
    }

    fn scalar<'t>(&'t self, text: &'t str, id: NodeId) -> Option<&'t str> {
        if id as usize >= self.nodes.len() {
            return None;
        }
        match self.nodes.get(id).kind {
            Kind::Scalar { value, .. } if value.in_source() => Some(&text[value.range()]),
            Kind::Scalar { value, .. } => Some(&self.values[value.range()]),
            _ => None,
        }
    }

    fn has_meta(&self, id: NodeId) -> bool {
        self.meta.binary_search_by_key(&id, |e| e.0).is_ok()
    }

    /// Add the nodes of `next` (the part that follows this one) and make the entries of its
    /// top-level mapping the last entries of `map`. `None` when an alias of `next` names an
    /// anchor no part defines.
    fn append_entries(&mut self, next: Parts, map: NodeId) -> Option<()> {
        let off = self.nodes.len() as NodeId;
        let (pair_off, item_off) = (self.keys.len() as u32, self.seq_items.len() as u32);
        let value_off = self.values.len() as u32;
        // An alias `next` could not resolve names the latest anchor of that name before it.
        let mut targets = Vec::with_capacity(next.unresolved.len());
        for (id, name) in &next.unresolved {
            targets.push((id + off, *self.anchors.get(name)?));
        }
        self.nodes.append(next.nodes, pair_off, item_off, value_off);
        for (id, target) in targets {
            self.nodes.set_alias(id, target);
        }
        append_from_back(&mut self.keys, next.keys, |k| k + off);
        // Every node of `next` comes after every node here: `far` stays in key order.
        self.far
            .extend(next.far.iter().map(|&(k, v)| (k + off, v + off)));
        self.seq_items
            .extend(next.seq_items.iter().map(|&i| i + off));
        self.values.push_str(&next.values);
        if self.values.len() >= IN_SOURCE as usize {
            return None;
        }
        self.meta
            .extend(next.meta.into_iter().map(|(id, m)| (id + off, m)));
        self.comments.extend(next.comments);
        for (name, id) in next.anchors {
            self.anchors.insert(name, id + off);
        }
        // `map` takes the entries of the next part's top level, which is left empty.
        let next_root = next.root + off;
        let mut joined: Vec<NodeId> = self.block_entries(map)?.keys.to_vec();
        let next_entries = self.block_entries(next_root)?;
        joined.extend_from_slice(next_entries.keys);
        let (_, last) = next_entries.last().or(self.block_entries(map)?.last())?;
        let run = Span {
            start: self.keys.len() as u32,
            len: joined.len() as u32,
        };
        self.keys.extend(joined);
        self.nodes.set_span(next_root, Span { start: 0, len: 0 })?;
        self.nodes.set_span(map, run)?;
        // Block collections end where their last child ends: `map`, and the top level
        // when `map` is its last value.
        let end = self.nodes.end(last);
        self.nodes.set_end(map, end);
        let root = self.root;
        if self.block_entries(root)?.last().map(|e| e.1) == Some(map) {
            self.nodes.set_end(root, end);
        }
        Some(())
    }
}

/// Files from this size on are read in two parts in parallel (and the other passes over
/// them run side by side).
pub const PARALLEL_MIN: usize = 1 << 20;

/// Run `a` and `b`, side by side on two cores when `parallel` (for big inputs: for small
/// ones, handing work to another thread costs more than it saves).
pub fn both<A: Send, B: Send>(
    parallel: bool,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    if parallel {
        rayon::join(a, b)
    } else {
        (a(), b())
    }
}

/// The tree of one part of a text, before it becomes a [`Tree`]. Offsets are into the
/// whole text.
struct Parts {
    nodes: Nodes,
    keys: Vec<NodeId>,
    far: Vec<(NodeId, NodeId)>,
    seq_items: Vec<NodeId>,
    values: String,
    meta: Vec<(NodeId, Meta)>,
    root: NodeId,
    comments: Vec<(usize, usize)>,
    /// The node each anchor name last named, for the parts that follow.
    anchors: HashMap<String, NodeId>,
    /// Aliases to anchors defined before this part: (alias node, anchor name).
    unresolved: Vec<(NodeId, String)>,
}

/// Build the tree of `text[range]`, which starts at a line start. `depth` is the number of
/// collections that enclose the part in the whole text.
fn build(
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
                let (mut keep, raw_end) = (false, range.end);
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

impl Tree {
    fn check_duplicate_keys(&self) -> Result<(), SyntaxError> {
        // Big trees are checked in slices on every core; the first duplicate in document
        // order is the one reported.
        const SLICE: usize = 1 << 16;
        let n = self.nodes.len();
        if n > SLICE {
            use rayon::prelude::*;
            let found: Vec<Result<(), SyntaxError>> = (0..n.div_ceil(SLICE))
                .into_par_iter()
                .map(|i| self.check_duplicate_keys_in(i * SLICE..((i + 1) * SLICE).min(n)))
                .collect();
            return found.into_iter().collect();
        }
        self.check_duplicate_keys_in(0..n)
    }

    fn check_duplicate_keys_in(&self, ids: std::ops::Range<usize>) -> Result<(), SyntaxError> {
        let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for id in ids {
            let Some(entries) = self.nodes.mapping_entries(id as NodeId) else {
                continue;
            };
            let entries = &self.keys[entries.range()];
            seen.clear();
            for (i, &k) in entries.iter().enumerate() {
                let Some(key) = self.scalar(k) else { continue };
                if key == "<<" && self.tag(k).is_none() {
                    continue;
                }
                // Most mappings are small: a scan beats hashing them.
                let dup = if entries.len() <= 16 {
                    entries[..i]
                        .iter()
                        .any(|&p| self.scalar(p) == Some(key) && !self.is_merge_key(p))
                } else {
                    !seen.insert(key)
                };
                if dup {
                    let (line, col) = line_col_of(&self.text, self.node(k).start());
                    return Err(SyntaxError {
                        line,
                        col,
                        message: format!("duplicate key {key:?} in the same mapping"),
                    });
                }
            }
        }
        Ok(())
    }

    /// Every node reachable from the root, one per line with its kind, byte span, scalar
    /// text, anchor and tag (an alias shows where its target starts). Two trees with equal
    /// outlines are the same tree; used by tests and for debugging.
    pub fn outline(&self) -> String {
        let mut out = String::new();
        let mut stack: Vec<(NodeId, usize)> = vec![(self.root, 0)];
        while let Some((id, depth)) = stack.pop() {
            let n = self.node(id);
            let what = match n.kind {
                Kind::Scalar { value, style, keep } => {
                    format!(
                        "{style:?}{} {:?}",
                        if keep { "+" } else { "" },
                        self.value_of(value)
                    )
                }
                Kind::Mapping { flow, .. } => format!("map flow={flow}"),
                Kind::Sequence { flow, .. } => format!("seq flow={flow}"),
                Kind::Alias { target } => format!("alias to {}", self.node(target).start),
            };
            out.push_str(&format!(
                "{:depth$}{}..{} {what} {:?} {:?} {}\n",
                "",
                n.start,
                n.end,
                self.anchor(id),
                self.tag(id),
                self.raw_end(id),
            ));
            let mut children: Vec<NodeId> = match n.kind {
                Kind::Mapping { entries, .. } => self
                    .pairs(entries)
                    .iter()
                    .flat_map(|(k, v)| [k, v])
                    .collect(),
                Kind::Sequence { items, .. } => self.seq_items[items.range()].to_vec(),
                _ => Vec::new(),
            };
            children.reverse();
            stack.extend(children.into_iter().map(|c| (c, depth + 1)));
        }
        out
    }

    /// The text the tree was parsed from.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Give the text back, dropping the tree.
    pub fn into_text(self) -> String {
        self.text
    }

    /// How many nodes the tree has.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Every node, in document order.
    pub fn all_nodes(&self) -> impl Iterator<Item = Node> + '_ {
        self.nodes.packed.iter().map(|&p| self.nodes.decode(p))
    }

    pub fn node(&self, id: NodeId) -> Node {
        self.nodes.get(id)
    }

    fn meta(&self, id: NodeId) -> Option<&Meta> {
        if self.meta.is_empty() {
            return None;
        }
        self.meta
            .binary_search_by_key(&id, |e| e.0)
            .ok()
            .map(|i| &self.meta[i].1)
    }

    /// The anchor defined on node `id` (`&name`), without the `&`.
    pub fn anchor(&self, id: NodeId) -> Option<&str> {
        self.meta(id)?.anchor.as_deref()
    }

    /// The tag of node `id` as written, e.g. `!reset` or `!!str`.
    pub fn tag(&self, id: NodeId) -> Option<&str> {
        self.meta(id)?.tag.as_deref()
    }

    /// For a block scalar with keep chomping, where its trailing blank lines end; for any
    /// other node, where it ends.
    pub fn raw_end(&self, id: NodeId) -> usize {
        self.meta(id)
            .and_then(|m| m.raw_end)
            .map_or(self.node(id).end(), |r| r as usize)
    }

    fn value_of(&self, v: ValueRef) -> &str {
        if v.in_source() {
            &self.text[v.range()]
        } else {
            &self.values[v.range()]
        }
    }

    /// Follow aliases to the node they name.
    pub fn resolve(&self, mut id: NodeId) -> NodeId {
        for _ in 0..64 {
            match self.nodes.alias_target(id) {
                Some(target) => id = target,
                None => return id,
            }
        }
        id
    }

    /// The scalar text of a node (after following aliases), if it is a scalar.
    pub fn scalar(&self, id: NodeId) -> Option<&str> {
        let (value, _) = self.nodes.scalar(self.resolve(id))?;
        Some(self.value_of(value))
    }

    /// The style of a scalar (after following aliases).
    pub fn style(&self, id: NodeId) -> Option<Style> {
        self.nodes.scalar(self.resolve(id)).map(|(_, style)| style)
    }

    pub fn is_null(&self, id: NodeId) -> bool {
        self.nodes
            .scalar(self.resolve(id))
            .is_some_and(|(value, style)| {
                style == Style::Plain
                    && matches!(self.value_of(value), "" | "~" | "null" | "Null" | "NULL")
            })
    }

    /// The `(key, value)` pairs of a mapping (after following aliases), in source order.
    pub fn entries(&self, id: NodeId) -> Entries<'_> {
        match self.nodes.mapping_entries(self.resolve(id)) {
            Some(entries) => self.pairs(entries),
            None => Entries {
                keys: &[],
                far: &[],
            },
        }
    }

    /// The items of a sequence (after following aliases), in source order.
    pub fn items(&self, id: NodeId) -> &[NodeId] {
        match self.nodes.sequence_items(self.resolve(id)) {
            Some(items) => &self.seq_items[items.range()],
            None => &[],
        }
    }

    /// The pairs a mapping's [`Kind::Mapping::entries`] names.
    pub fn pairs(&self, run: Span) -> Entries<'_> {
        Entries {
            keys: &self.keys[run.range()],
            far: &self.far,
        }
    }

    /// The items a sequence's [`Kind::Sequence::items`] names.
    pub fn seq(&self, run: Span) -> &[NodeId] {
        &self.seq_items[run.range()]
    }

    /// Whether node `id` itself (aliases not followed) is a flow collection.
    pub fn is_flow(&self, id: NodeId) -> bool {
        self.nodes.is_flow(id)
    }

    pub fn is_mapping(&self, id: NodeId) -> bool {
        self.nodes.mapping_entries(self.resolve(id)).is_some()
    }

    pub fn is_sequence(&self, id: NodeId) -> bool {
        self.nodes.sequence_items(self.resolve(id)).is_some()
    }

    /// The value of `key` written directly in mapping `map` (no merge keys).
    pub fn get(&self, map: NodeId, key: &str) -> Option<(NodeId, NodeId)> {
        self.entries(map)
            .iter()
            .rev()
            .find(|&(k, _)| self.scalar(k) == Some(key) && !self.is_merge_key(k))
    }

    pub fn is_merge_key(&self, k: NodeId) -> bool {
        matches!(self.nodes.scalar(k), Some((value, Style::Plain)) if self.value_of(value) == "<<")
            && self.tag(k).is_none()
    }

    /// The value of `key` in mapping `map`, looking through merge keys (`<<: *a`,
    /// `<<: [*a, *b]`) the way YAML merge keys define it: the mapping's own keys win,
    /// then the merged mappings in the order they are listed.
    /// Returns `(key node, value node, written directly in map)`.
    pub fn lookup(&self, map: NodeId, key: &str) -> Option<(NodeId, NodeId, bool)> {
        self.lookup_depth(map, key, 0)
    }

    fn lookup_depth(&self, map: NodeId, key: &str, depth: usize) -> Option<(NodeId, NodeId, bool)> {
        if depth > 32 {
            return None;
        }
        if let Some((k, v)) = self.get(map, key) {
            return Some((k, v, depth == 0));
        }
        for (k, v) in self.entries(map) {
            if !self.is_merge_key(k) {
                continue;
            }
            let sources = self.merge_sources(v);
            for s in sources {
                let s = self.resolve(s);
                if !self.is_mapping(s) {
                    continue;
                }
                if let Some((k2, v2, _)) = self.lookup_depth(s, key, depth + 1) {
                    return Some((k2, v2, false));
                }
            }
        }
        None
    }

    /// The nodes a merge key's value names (`<<: *a` or `<<: [*a, *b]`), aliases followed.
    pub fn merge_sources(&self, value: NodeId) -> Vec<NodeId> {
        let v = self.resolve(value);
        if self.is_sequence(v) {
            self.items(v).iter().map(|&i| self.resolve(i)).collect()
        } else {
            vec![v]
        }
    }
}

/// Marks that keep the digest stream unambiguous.
const D_SCALAR: u8 = 1;
const D_PLAIN: u8 = 2;
const D_SEQ: u8 = 3;
const D_MAP: u8 = 4;
const D_ALIAS: u8 = 5;
const D_META: u8 = 6;

/// Digests of aliased subtrees already worked out, by (target, masked).
pub type DigestMemo = HashMap<(NodeId, bool), u64>;

impl Tree {
    /// The number of nodes the document has once every alias is expanded, or `None` when it
    /// exceeds `limit` (an alias bomb) or an alias names a node it is inside of. Linear in
    /// the tree size: each node is sized once. Only aliased nodes are remembered (every
    /// other node has one parent and is sized on the way there), so no table as long as
    /// the tree is built.
    pub fn expanded_size(&self, limit: usize) -> Option<usize> {
        // The size of each aliased node; 0 until it is sized, BUSY while it is.
        const BUSY: u32 = u32::MAX;
        let mut memo: HashMap<NodeId, u32> = self
            .nodes
            .packed
            .iter()
            .filter(|p| p.variant() == ALIAS)
            .map(|p| (p.data, 0))
            .collect();
        if memo.is_empty() {
            return Some(self.nodes.len());
        }
        let limit = limit.min(u32::MAX as usize - 1) as u32;
        // Children of a node without allocating: keys and values of a mapping, items of a
        // sequence, the target of an alias.
        let child_count = |id: NodeId| match self.nodes.children(id) {
            (MAPPING, entries) => entries.len as usize * 2,
            (_, run) => run.len as usize,
        };
        let child = |id: NodeId, i: usize| match self.nodes.children(id) {
            (ALIAS, target) => target.start,
            (SEQUENCE, items) => self.seq_items[items.start as usize + i],
            (MAPPING, entries) => {
                let k = self.keys[entries.start as usize + i / 2];
                if i.is_multiple_of(2) {
                    k
                } else {
                    value_of(k, &self.far)
                }
            }
            _ => id,
        };
        // The nodes being sized: (node, its next child, its size so far).
        let mut stack: Vec<(NodeId, usize, u32)> = Vec::new();
        // Start sizing `id`; an aliased node sized already gives its size instead (0: not).
        let enter = |id: NodeId,
                     stack: &mut Vec<(NodeId, usize, u32)>,
                     memo: &mut HashMap<NodeId, u32>|
         -> Option<u32> {
            if let Some(m) = memo.get_mut(&id) {
                match *m {
                    BUSY => return None, // an alias inside the node it names
                    0 => *m = BUSY,
                    done => return Some(done),
                }
            }
            stack.push((id, 0, 1));
            Some(0)
        };
        enter(self.root, &mut stack, &mut memo)?;
        let mut total = 0;
        while let Some(top) = stack.last_mut() {
            let (id, next, _) = *top;
            if next < child_count(id) {
                top.1 += 1;
                let sized = enter(child(id, next), &mut stack, &mut memo)?;
                if let Some(top) = stack.last_mut().filter(|_| sized > 0) {
                    top.2 = top.2.saturating_add(sized);
                }
                continue;
            }
            let (id, _, size) = stack.pop()?;
            if size > limit {
                return None;
            }
            if let Some(m) = memo.get_mut(&id) {
                *m = size;
            }
            match stack.last_mut() {
                Some(parent) => parent.2 = parent.2.saturating_add(size),
                None => total = size,
            }
        }
        Some(total as usize)
    }

    /// Feed what node `id` means into `h`: scalar text and whether it is plain, anchors and
    /// tags, the shape of collections, and aliases as aliases of what they name. Inside
    /// mappings reached with `mask`, entries whose key is in `mask` are left out, and the
    /// mask follows merge keys (`<<`), whose sources contribute to the same mapping.
    /// Positions, quoting style and comments are not part of the meaning. `None` when
    /// aliases nest too deeply to digest.
    pub fn digest_into<H: Hasher>(
        &self,
        h: &mut H,
        id: NodeId,
        mask: Option<&[&str]>,
        memo: &mut DigestMemo,
        depth: usize,
    ) -> Option<()> {
        if depth > 512 {
            return None;
        }
        if let Some(m) = self.meta(id)
            && (m.anchor.is_some() || m.tag.is_some())
        {
            h.write_u8(D_META);
            for s in [&m.anchor, &m.tag] {
                let s = s.as_deref().unwrap_or("");
                h.write_usize(s.len());
                h.write(s.as_bytes());
            }
        }
        match self.nodes.get(id).kind {
            Kind::Scalar { value, style, .. } => {
                h.write_u8(if style == Style::Plain {
                    D_PLAIN
                } else {
                    D_SCALAR
                });
                let s = self.value_of(value);
                h.write_usize(s.len());
                h.write(s.as_bytes());
            }
            Kind::Alias { target } => {
                let key = (target, mask.is_some());
                let d = match memo.get(&key) {
                    Some(&d) => d,
                    None => {
                        let mut sub = std::collections::hash_map::DefaultHasher::new();
                        self.digest_into(&mut sub, target, mask, memo, depth + 1)?;
                        let d = sub.finish();
                        memo.insert(key, d);
                        d
                    }
                };
                h.write_u8(D_ALIAS);
                h.write_u64(d);
            }
            Kind::Sequence { items, .. } => {
                h.write_u8(D_SEQ);
                h.write_usize(items.len as usize);
                for &i in &self.seq_items[items.range()] {
                    self.digest_into(h, i, None, memo, depth + 1)?;
                }
            }
            Kind::Mapping { entries, .. } => {
                let entries = self.pairs(entries);
                let keep = |k: NodeId| match (mask, self.scalar(k)) {
                    (Some(m), Some(key)) => !m.contains(&key),
                    _ => true,
                };
                h.write_u8(D_MAP);
                h.write_usize(entries.iter().filter(|&(k, _)| keep(k)).count());
                for (k, v) in entries.iter().filter(|&(k, _)| keep(k)) {
                    let merge = self.is_merge_key(k);
                    self.digest_into(h, k, None, memo, depth + 1)?;
                    self.digest_into(h, v, if merge { mask } else { None }, memo, depth + 1)?;
                }
            }
        }
        Some(())
    }
}

/// A fully expanded YAML value (aliases and merge keys resolved), used to check that an
/// edit changed nothing but what it meant to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Scalar(String, bool),
    Seq(Vec<Value>),
    Map(Vec<(Value, Value)>),
}

/// Budget for alias expansion: protects against "billion laughs" documents.
pub struct Budget(pub usize);

impl Tree {
    /// Expand `id` into a [`Value`], applying merge keys, within `budget` nodes.
    pub fn value(&self, id: NodeId, budget: &mut Budget) -> Result<Value, String> {
        self.value_depth(id, budget, 0)
    }

    fn value_depth(&self, id: NodeId, budget: &mut Budget, depth: usize) -> Result<Value, String> {
        if budget.0 == 0 {
            return Err("aliases expand to too many nodes (an alias bomb?)".into());
        }
        budget.0 -= 1;
        if depth > 256 {
            return Err("aliases nest too deeply (a recursive alias?)".into());
        }
        let id = self.resolve(id);
        Ok(match self.nodes.get(id).kind {
            Kind::Scalar { value, style, .. } => {
                let plain = style == Style::Plain && self.tag(id).is_none();
                Value::Scalar(self.value_of(value).to_string(), plain)
            }
            Kind::Sequence { .. } => Value::Seq(
                self.items(id)
                    .iter()
                    .map(|&i| self.value_depth(i, budget, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            Kind::Mapping { .. } => {
                let mut out: Vec<(Value, Value)> = Vec::new();
                self.merge_into(id, &mut out, budget, depth)?;
                Value::Map(out)
            }
            Kind::Alias { .. } => Value::Scalar(String::new(), true),
        })
    }

    fn merge_into(
        &self,
        map: NodeId,
        out: &mut Vec<(Value, Value)>,
        budget: &mut Budget,
        depth: usize,
    ) -> Result<(), String> {
        if depth > 256 {
            return Err("merge keys nest too deeply".into());
        }
        let mut merged: Vec<(Value, Value)> = Vec::new();
        for (k, v) in self.entries(map) {
            if self.is_merge_key(k) {
                let sources = self.merge_sources(v);
                for s in sources {
                    let s = self.resolve(s);
                    if self.is_mapping(s) {
                        let mut inner = Vec::new();
                        self.merge_into(s, &mut inner, budget, depth + 1)?;
                        for (ik, iv) in inner {
                            if !merged.iter().any(|(mk, _)| *mk == ik) {
                                merged.push((ik, iv));
                            }
                        }
                    }
                }
            } else {
                let key = self.value_depth(k, budget, depth + 1)?;
                let val = self.value_depth(v, budget, depth + 1)?;
                out.push((key, val));
            }
        }
        for (mk, mv) in merged {
            if !out.iter().any(|(k, _)| *k == mk) {
                out.push((mk, mv));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(s: &str) -> Tree {
        Tree::parse(s.to_string(), Limits::default()).unwrap()
    }

    #[test]
    fn appending_from_the_back_keeps_order_across_chunks() {
        for (head, tail) in [(0usize, 0usize), (3, 1), (5, 40_000), (70_000, 16_384)] {
            let mut to: Vec<u32> = (0..head as u32).collect();
            let from: Vec<u32> = (0..tail as u32).collect();
            append_from_back(&mut to, from, |x| x + 1_000_000);
            let want: Vec<u32> = (0..head as u32)
                .chain((0..tail as u32).map(|x| x + 1_000_000))
                .collect();
            assert_eq!(to, want, "head {head}, tail {tail}");
        }
    }

    #[test]
    fn scalars_read_the_same_whether_verbatim_or_rewritten() {
        let t = tree(concat!(
            "a: plain\n",
            "b: \"quoted\"\n",
            "c: \"tab\\there\"\n",
            "d: 'it''s'\n",
            "e: two\n  lines\n",
            "f: |\n  block\n",
            "g: &x !!str 1\n",
            "h: *x\n",
        ));
        let want = [
            ("a", "plain"),
            ("b", "quoted"),
            ("c", "tab\there"),
            ("d", "it's"),
            ("e", "two lines"),
            ("f", "block\n"),
            ("g", "1"),
            ("h", "1"),
        ];
        for (key, value) in want {
            let (_, v) = t.get(t.root, key).expect(key);
            assert_eq!(t.scalar(v), Some(value), "{key}");
        }
        let (_, g) = t.get(t.root, "g").unwrap();
        assert_eq!((t.anchor(g), t.tag(g)), (Some("x"), Some("!!str")));
        let (_, a) = t.get(t.root, "a").unwrap();
        assert_eq!((t.anchor(a), t.tag(a)), (None, None));
    }

    /// The tree read in parts, and whether the parts were used.
    fn in_parts(s: &str) -> (Tree, bool) {
        let used = split_points(s)
            .and_then(|(p, q)| parse_in_parts(s, p, q, Limits::default()))
            .is_some();
        (
            Tree::parse_split(s.to_string(), Limits::default(), 0).unwrap(),
            used,
        )
    }

    const SPLIT: &str = concat!(
        "# top\n",
        "x-common: &common\n",
        "  restart: always\n",
        "services:\n",
        "  a:\n",
        "    <<: *common\n",
        "    image: \"a\"\n",
        "    command: |\n",
        "      run a\n",
        "\n",
        "  b: &b\n",
        "    <<: *common\n",
        "    image: b # the b image\n",
        "  c:\n",
        "    <<: *common\n",
        "    environment: {X: 1,\n",
        "      Y: 2}\n",
        "  'd': &common\n",
        "    image: d\n",
        "  e:\n",
        "    <<: *common\n",
        "    labels: [x]\n",
        "  f:\n",
        "    <<: *b\n",
        "# after\n",
        "volumes:\n",
        "  v: *common\n",
    );

    #[test]
    fn a_file_read_in_parts_is_the_file_read_whole() {
        let whole = Tree::parse_split(SPLIT.to_string(), Limits::default(), usize::MAX).unwrap();
        let (parts, used) = in_parts(SPLIT);
        assert!(used, "the parts fit together");
        assert_eq!(parts.outline(), whole.outline());
        // Anchors redefined later in the file are followed as the whole file reads them.
        let services = parts.get(parts.root, "services").unwrap().1;
        let e = parts.get(services, "e").unwrap().1;
        let merged = parts.entries(e).first().unwrap().1;
        assert_eq!(
            parts.scalar(parts.get(merged, "image").unwrap().1),
            Some("d")
        );
    }

    #[test]
    fn cuts_that_could_change_the_meaning_are_not_taken() {
        for bad in [
            format!("%YAML 1.2\n---\n{SPLIT}"),
            format!("{SPLIT}---\nx: 1\n"),
            SPLIT.replace("  e:\n", "  ? e\n"),
            SPLIT.replace("volumes:", "? volumes"),
            // Found by fuzzing: an empty key after `services:` is placed after the node
            // before it, which a part read on its own does not have.
            SPLIT.replace("volumes:", ":"),
        ] {
            let whole = Tree::parse_split(bad.clone(), Limits::default(), usize::MAX);
            let parts = Tree::parse_split(bad.clone(), Limits::default(), 0);
            assert_eq!(
                parts.as_ref().map(Tree::outline).map_err(Clone::clone),
                whole.as_ref().map(Tree::outline).map_err(Clone::clone),
                "{bad}"
            );
        }
        // A cut inside a flow collection that spans lines leaves a part that does not parse;
        // the whole text is parsed instead.
        let spanning = "services:\n  a:\n    image: a\n    labels: [one, two, three, four,\n  g: 2]\n  b:\n    image: b\n";
        let (p, _) = split_points(spanning).unwrap();
        assert!(
            spanning[p..].starts_with("  g: 2]"),
            "the cut is inside the list"
        );
        assert!(parse_in_parts(spanning, p, spanning.len(), Limits::default()).is_none());
        let whole = Tree::parse_split(spanning.into(), Limits::default(), usize::MAX);
        let parts = Tree::parse_split(spanning.into(), Limits::default(), 0);
        assert_eq!(
            parts.as_ref().map(Tree::outline).map_err(Clone::clone),
            whole.as_ref().map(Tree::outline).map_err(Clone::clone),
        );
    }

    #[test]
    fn a_line_of_spaces_deeper_than_a_block_scalar_is_part_of_it() {
        // Found by fuzzing: the new keys went in before such a line, which then left the
        // value, and the fixer refused its own edit.
        for (text, value) in [
            ("a: |\n  exec x\n   ", "exec x\n "),
            ("a: |\n  exec x\n   \nb: 1\n", "exec x\n \n"),
            ("a: |\n  exec x\n  \nb: 1\n", "exec x\n"),
        ] {
            let t = tree(text);
            let (_, v) = t.get(t.root, "a").unwrap();
            assert_eq!(t.scalar(v), Some(value));
            let end = t.node(v).end();
            let last = if value.ends_with(' ') || value.ends_with(" \n") {
                "   "
            } else {
                "exec x"
            };
            assert!(t.text()[..end].ends_with(last), "{text:?} ends at {end}");
        }
    }

    #[test]
    fn children_of_nested_collections_stay_with_their_parent() {
        let t = tree("s:\n  a: [1, {x: 2}, 3]\n  b:\n    - q\n    - r: 4\nz: 5\n");
        let keys = |m: NodeId| -> Vec<&str> {
            t.entries(m)
                .iter()
                .map(|(k, _)| t.scalar(k).unwrap())
                .collect()
        };
        assert_eq!(keys(t.root), ["s", "z"]);
        let (_, s) = t.get(t.root, "s").unwrap();
        assert_eq!(keys(s), ["a", "b"]);
        let (_, a) = t.get(s, "a").unwrap();
        assert_eq!(t.items(a).len(), 3);
        assert_eq!(keys(t.items(a)[1]), ["x"]);
        let (_, b) = t.get(s, "b").unwrap();
        assert_eq!(t.scalar(t.items(b)[0]), Some("q"));
        assert_eq!(keys(t.items(b)[1]), ["r"]);
        // A block collection ends where its last child ends.
        assert_eq!(
            &t.text()[t.node(b).start()..t.node(b).end()],
            "- q\n    - r: 4"
        );
    }

    #[test]
    fn expanded_size_counts_each_alias_as_a_copy_of_what_it_names() {
        let size = |s: &str, limit: usize| tree(s).expanded_size(limit);
        // Without aliases: the nodes themselves (map, key, value).
        assert_eq!(size("a: 1\n", 100), Some(3));
        // map, a, [1, 2] (3 nodes), b, *x (1 + 3).
        assert_eq!(size("a: &x [1, 2]\nb: *x\n", 100), Some(1 + 1 + 3 + 1 + 4));
        // One aliased node named twice, and an alias inside an aliased node.
        // map; a + [1] (2); b + {k: *x} (map, k, alias 1 + 2 = 5); c + *y (1 + 5); d + *x (1 + 2).
        let nested = "a: &x [1]\nb: &y {k: *x}\nc: *y\nd: *x\n";
        assert_eq!(size(nested, 100), Some(1 + 3 + 6 + 7 + 4));
        assert_eq!(size(nested, 16), None);
        // An alias inside the node it names never ends.
        assert_eq!(size("a: &x [1, *x]\n", 1000), None);
        assert_eq!(size("a: &x {k: [*x]}\n", 1000), None);
    }

    #[test]
    fn values_of_collection_keys_are_found() {
        let t = tree("? [a, b]\n: c\nd: e\n? {x: 1}\n: [f]\ng: {[h]: i, j: k}\n");
        let text = |id: NodeId| t.text()[t.node(id).start()..t.node(id).end()].to_string();
        let top: Vec<(String, String)> = t
            .entries(t.root)
            .iter()
            .map(|(k, v)| (text(k), text(v)))
            .collect();
        assert_eq!(
            top,
            [
                ("[a, b]", "c"),
                ("d", "e"),
                ("{x: 1}", "[f]"),
                ("g", "{[h]: i, j: k}")
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        let (_, g) = t.entries(t.root).last().unwrap();
        let inner: Vec<(String, String)> = t
            .entries(g)
            .iter()
            .rev()
            .map(|(k, v)| (text(k), text(v)))
            .collect();
        assert_eq!(
            inner,
            [("j", "k"), ("[h]", "i")].map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert_eq!(t.entries(g).len(), 2);
        assert_eq!(t.get(g, "j").map(|(_, v)| text(v)).as_deref(), Some("k"));
    }

    #[test]
    fn collection_keys_read_the_same_in_parts() {
        let text = concat!(
            "x: {? [a]: b}\n",
            "services:\n",
            "  a:\n",
            "    labels: {[k]: v, w: z}\n",
            "  b:\n",
            "    image: b\n",
            "    x-extra:\n",
            "      ? [m, n]\n",
            "      : o\n",
            "  c:\n",
            "    image: c\n",
            "volumes: {? [d]: e}\n",
        );
        let (parts, used) = in_parts(text);
        assert!(used, "the text was read in parts");
        assert_eq!(parts.outline(), tree(text).outline());
    }
}

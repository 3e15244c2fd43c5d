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
//!
//! Where things are:
//! - this file: the public types and the read-only [`Tree`] API (nodes, entries, lookups,
//!   merge keys);
//! - `node.rs`: how nodes are packed into 12 bytes, and the [`Entries`] of a mapping;
//! - `events.rs`: parser events to a tree (one part of a text, or all of it);
//! - `split.rs`: reading a big file in two parts in parallel, and joining the parts;
//! - `value.rs`: what a node means once aliases and merge keys are expanded (its expanded
//!   size, a digest of it, a plain [`Value`]).

mod events;
mod node;
mod split;
#[cfg(test)]
mod tests;
mod value;

use events::build;
pub use node::{Entries, EntryIter};
use node::{MAX_TEXT, Nodes};
use split::{parse_in_parts, split_points};
pub use value::{Budget, DigestMemo, Value};

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

/// Limits that keep hostile input from exhausting memory or the stack (README, "Limits").
/// `check` and `fix` read a file under the same limits; `fix` re-reads its own output
/// under [`Limits::for_output`], so it never refuses a file `check` accepts because the
/// hardening keys it adds pass a limit.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Deepest nesting of collections.
    pub max_depth: usize,
    /// Most nodes one document may have.
    pub max_nodes: usize,
    /// Most services one file may define (checked right after parsing, before any rule
    /// runs: what the rules keep per service is what a file of tiny services multiplies).
    pub max_services: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 128,
            max_nodes: 2_000_000,
            max_services: 20_000,
        }
    }
}

impl Limits {
    /// Nodes a fix may add to one service (`user:`, `cap_drop: [ALL]`, `cap_add` with
    /// every capability, `security_opt`, `userns_mode`, with room to spare).
    pub const NODES_ADDED_PER_SERVICE: usize = 64;

    /// The limits for re-reading a fixed file: as many more nodes as the fix can add.
    pub fn for_output(self) -> Limits {
        let added = self
            .max_services
            .saturating_mul(Self::NODES_ADDED_PER_SERVICE);
        Limits {
            max_nodes: self.max_nodes.saturating_add(added),
            ..self
        }
    }
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

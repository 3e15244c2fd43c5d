//! A read-only, span-aware YAML tree built from `granit-parser` events.
//!
//! Every node keeps the byte range of its source text, so rules can point at it
//! and the editor can splice new text next to it without re-serialising anything.
//! Anchors and aliases are kept as they are written (an alias is a node that
//! points at its target); merge keys are resolved on demand by the compose view.

use std::borrow::Cow;
use std::collections::HashMap;

use granit_parser::{Event, Parser, ScalarStyle, StructureStyle, options};

/// Index of a node in [`Tree::nodes`].
pub type NodeId = usize;

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

#[derive(Debug, Clone)]
pub enum Kind {
    Scalar {
        /// The scalar's text after escapes and folding, kept in [`Tree::values`].
        value: ValueRef,
        style: Style,
        /// Block scalars with keep chomping (`|+`, `>+`): trailing blank lines are content.
        keep: bool,
        /// For block scalars, where the parser's span ends (after trailing blank lines).
        raw_end: usize,
    },
    Mapping {
        flow: bool,
        entries: Vec<(NodeId, NodeId)>,
    },
    Sequence {
        flow: bool,
        items: Vec<NodeId>,
    },
    Alias {
        target: NodeId,
    },
}

/// Where a scalar's text sits in [`Tree::values`] (one buffer for all scalars, instead of
/// one allocation each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueRef {
    start: u32,
    len: u32,
}

impl ValueRef {
    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.start as usize + self.len as usize
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    pub kind: Kind,
    /// First byte of the node's content (the `{`/`[` of a flow collection, the first key of a
    /// block mapping, the first item's content of a block sequence).
    pub start: usize,
    /// One past the last byte of the node's content. Block scalars end after their last
    /// non-blank content line (before the line break); block collections end where their last
    /// child ends.
    pub end: usize,
    /// 1-based line of `start`.
    pub line: u32,
    /// 0-based column (in characters) of `start`.
    pub col: u32,
    /// Anchor and tag, rare enough to live behind one pointer.
    meta: Option<Box<Meta>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Meta {
    anchor: Option<String>,
    tag: Option<String>,
}

impl Node {
    /// The anchor defined on this node (`&name`), without the `&`.
    pub fn anchor(&self) -> Option<&str> {
        self.meta.as_ref()?.anchor.as_deref()
    }

    /// The tag as written, e.g. `!reset` or `!!str`.
    pub fn tag(&self) -> Option<&str> {
        self.meta.as_ref()?.tag.as_deref()
    }

    fn same_meta(&self, other: &Node) -> bool {
        self.meta == other.meta
    }
}

/// The prefix of the only comments the tool reads (`# compose-harden: ignore[...]`).
pub const COMMENT_DIRECTIVE: &str = "compose-harden:";

/// A parsed single-document YAML stream.
#[derive(Debug, Clone)]
pub struct Tree {
    pub nodes: Vec<Node>,
    /// The text of every scalar, back to back.
    values: String,
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

enum Frame {
    Map { id: NodeId, key: Option<NodeId> },
    Seq { id: NodeId },
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

/// Where the content of a block scalar really ends: after its last non-blank line.
fn block_scalar_end(text: &str, start: usize, raw_end: usize) -> usize {
    let body = &text[start..raw_end.min(text.len())];
    let mut end = start;
    let mut line_start = 0;
    for (i, c) in body.char_indices() {
        if c == '\n' {
            let line = &body[line_start..i];
            if !line.trim().is_empty() {
                end = start + line_start + line.trim_end_matches('\r').len();
            }
            line_start = i + 1;
        }
    }
    let line = &body[line_start..];
    if !line.trim().is_empty() {
        end = start + line_start + line.trim_end_matches('\r').len();
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

impl Tree {
    /// Parse `text` (one YAML document; a leading BOM is allowed).
    pub fn parse(text: &str, limits: Limits) -> Result<Tree, SyntaxError> {
        let opts = options! {
            emit_anchor_events: true,
            // Read a block scalar that ends the file without a line break as libyaml,
            // PyYAML and Compose's go-yaml do, so the verifier sees the same values they do.
            block_scalar_eof_without_line_feed: true,
            // A run of comments is buffered while the parser looks ahead; real files have
            // long commented-out sections, and the text itself already bounds the count.
            max_buffered_comment_events: text.len() / 2 + 96,
            // Comments matter only for suppression directives; reading them costs about a
            // fifth of the parse, so they are collected only when a directive may exist.
            emit_comments: text.contains(COMMENT_DIRECTIVE),
            block_nesting_limit: limits.max_depth,
            flow_nesting_limit: limits.max_depth,
        };
        // About one node per 17 bytes in real compose files; growing past it doubles once.
        let mut nodes: Vec<Node> = Vec::with_capacity(text.len() / 16 + 16);
        let mut comments = Vec::new();
        let mut values = String::with_capacity(text.len() / 2);
        let mut stack: Vec<Frame> = Vec::new();
        let mut anchors: HashMap<usize, NodeId> = HashMap::new();
        let mut root: Option<NodeId> = None;
        let mut documents = 0usize;
        let mut last_node: Option<NodeId> = None;

        for item in Parser::new_from_str_with_options(text, opts) {
            let (event, span) = item.map_err(|e| SyntaxError {
                line: e.marker().line(),
                col: e.marker().col() + 1,
                message: e.info(),
            })?;
            let range = span.byte_range().unwrap_or(0..0);
            let (line, col) = (span.start.line(), span.start.col());
            let new_node = |kind: Kind, start: usize, end: usize, anchor_id: usize| {
                (kind, start, end, anchor_id)
            };
            let made = match event {
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
                        nodes[n].meta.get_or_insert_with(Box::default).anchor =
                            Some(name.into_owned());
                    }
                    None
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
                        match stack.last() {
                            Some(Frame::Map { key: Some(k), .. }) => {
                                start = nodes[*k].end;
                                end = start;
                            }
                            Some(Frame::Map { key: None, .. }) => {
                                if let Some(prev) = last_node {
                                    start = nodes[prev].end.min(start);
                                    end = start;
                                }
                            }
                            _ => {}
                        }
                    }
                    let tag = tag_text(tag.as_ref());
                    let at = values.len();
                    values.push_str(&value);
                    let kind = Kind::Scalar {
                        value: ValueRef {
                            start: at as u32,
                            len: value.len() as u32,
                        },
                        style,
                        keep,
                        raw_end,
                    };
                    Some((new_node(kind, start, end, anchor), tag))
                }
                Event::SequenceStart(style, anchor, tag) => {
                    let flow = style == StructureStyle::Flow;
                    let kind = Kind::Sequence {
                        flow,
                        items: Vec::new(),
                    };
                    Some((
                        new_node(kind, range.start, range.end, anchor),
                        tag_text(tag.as_ref()),
                    ))
                }
                Event::MappingStart(style, anchor, tag) => {
                    let flow = style == StructureStyle::Flow;
                    let kind = Kind::Mapping {
                        flow,
                        entries: Vec::new(),
                    };
                    Some((
                        new_node(kind, range.start, range.end, anchor),
                        tag_text(tag.as_ref()),
                    ))
                }
                Event::Alias(id) => {
                    let Some(&target) = anchors.get(&id) else {
                        return Err(SyntaxError {
                            line,
                            col: col + 1,
                            message: "alias refers to an unknown anchor".into(),
                        });
                    };
                    let kind = Kind::Alias { target };
                    Some((new_node(kind, range.start, range.end, 0), None))
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let frame = stack.pop();
                    let id = match frame {
                        Some(Frame::Map { id, .. }) | Some(Frame::Seq { id }) => id,
                        None => continue,
                    };
                    let flow = matches!(
                        nodes[id].kind,
                        Kind::Mapping { flow: true, .. } | Kind::Sequence { flow: true, .. }
                    );
                    if flow {
                        nodes[id].end = range.end;
                    } else {
                        let last = match &nodes[id].kind {
                            Kind::Mapping { entries, .. } => entries.last().map(|e| e.1),
                            Kind::Sequence { items, .. } => items.last().copied(),
                            _ => None,
                        };
                        nodes[id].end = last.map_or(nodes[id].start, |l| nodes[l].end);
                    }
                    last_node = Some(id);
                    None
                }
                _ => None,
            };
            let Some(((kind, start, end, anchor_id), tag)) = made else {
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
            let is_collection = matches!(kind, Kind::Mapping { .. } | Kind::Sequence { .. });
            let id = nodes.len();
            nodes.push(Node {
                kind,
                start,
                end,
                line: line as u32,
                col: col as u32,
                meta: tag.map(|t| {
                    Box::new(Meta {
                        anchor: None,
                        tag: Some(t),
                    })
                }),
            });
            if anchor_id != 0 {
                anchors.insert(anchor_id, id);
            }
            match stack.last_mut() {
                None => root = Some(id),
                Some(Frame::Map { id: m, key }) => match key.take() {
                    None => *key = Some(id),
                    Some(k) => {
                        if let Kind::Mapping { entries, .. } = &mut nodes[*m].kind {
                            entries.push((k, id));
                        }
                    }
                },
                Some(Frame::Seq { id: s }) => {
                    if let Kind::Sequence { items, .. } = &mut nodes[*s].kind {
                        items.push(id);
                    }
                }
            }
            if is_collection {
                if stack.len() >= limits.max_depth {
                    return Err(SyntaxError {
                        line,
                        col: col + 1,
                        message: format!(
                            "collections nest deeper than {} levels",
                            limits.max_depth
                        ),
                    });
                }
                stack.push(match nodes[id].kind {
                    Kind::Mapping { .. } => Frame::Map { id, key: None },
                    _ => Frame::Seq { id },
                });
            }
            last_node = Some(id);
        }
        let _ = last_node;
        let Some(root) = root else {
            return Err(SyntaxError {
                line: 1,
                col: 1,
                message: "the file holds no YAML content".into(),
            });
        };
        // Give back a reservation that turned out much too large (a copy otherwise not worth it).
        if nodes.capacity() > nodes.len() + nodes.len() / 4 + 64 {
            nodes.shrink_to_fit();
        }
        values.shrink_to_fit();
        let tree = Tree {
            nodes,
            values,
            root,
            comments,
        };
        tree.check_duplicate_keys()?;
        Ok(tree)
    }

    fn check_duplicate_keys(&self) -> Result<(), SyntaxError> {
        let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for node in &self.nodes {
            let Kind::Mapping { entries, .. } = &node.kind else {
                continue;
            };
            seen.clear();
            for (i, &(k, _)) in entries.iter().enumerate() {
                let Some(key) = self.scalar(k) else { continue };
                if key == "<<" && self.nodes[k].tag().is_none() {
                    continue;
                }
                // Most mappings are small: a scan beats hashing them.
                let dup = if entries.len() <= 16 {
                    entries[..i]
                        .iter()
                        .any(|&(p, _)| self.scalar(p) == Some(key) && !self.is_merge_key(p))
                } else {
                    !seen.insert(key)
                };
                if dup {
                    let n = &self.nodes[k];
                    return Err(SyntaxError {
                        line: n.line as usize,
                        col: n.col as usize + 1,
                        message: format!("duplicate key {key:?} in the same mapping"),
                    });
                }
            }
        }
        Ok(())
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    /// Follow aliases to the node they name.
    pub fn resolve(&self, mut id: NodeId) -> NodeId {
        for _ in 0..64 {
            match self.nodes[id].kind {
                Kind::Alias { target } => id = target,
                _ => return id,
            }
        }
        id
    }

    /// The scalar text of a node (after following aliases), if it is a scalar.
    pub fn scalar(&self, id: NodeId) -> Option<&str> {
        match &self.nodes[self.resolve(id)].kind {
            Kind::Scalar { value, .. } => Some(&self.values[value.range()]),
            _ => None,
        }
    }

    pub fn is_null(&self, id: NodeId) -> bool {
        match &self.nodes[self.resolve(id)].kind {
            Kind::Scalar { value, style, .. } => {
                *style == Style::Plain
                    && matches!(
                        &self.values[value.range()],
                        "" | "~" | "null" | "Null" | "NULL"
                    )
            }
            _ => false,
        }
    }

    pub fn entries(&self, id: NodeId) -> &[(NodeId, NodeId)] {
        match &self.nodes[self.resolve(id)].kind {
            Kind::Mapping { entries, .. } => entries,
            _ => &[],
        }
    }

    pub fn items(&self, id: NodeId) -> &[NodeId] {
        match &self.nodes[self.resolve(id)].kind {
            Kind::Sequence { items, .. } => items,
            _ => &[],
        }
    }

    pub fn is_mapping(&self, id: NodeId) -> bool {
        matches!(self.nodes[self.resolve(id)].kind, Kind::Mapping { .. })
    }

    pub fn is_sequence(&self, id: NodeId) -> bool {
        matches!(self.nodes[self.resolve(id)].kind, Kind::Sequence { .. })
    }

    /// The value of `key` written directly in mapping `map` (no merge keys).
    pub fn get(&self, map: NodeId, key: &str) -> Option<(NodeId, NodeId)> {
        self.entries(map)
            .iter()
            .rev()
            .find(|(k, _)| self.scalar(*k) == Some(key) && !self.is_merge_key(*k))
            .copied()
    }

    pub fn is_merge_key(&self, k: NodeId) -> bool {
        let n = &self.nodes[k];
        matches!(&n.kind, Kind::Scalar { value, style: Style::Plain, .. } if &self.values[value.range()] == "<<")
            && n.tag().is_none()
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
        for &(k, v) in self.entries(map) {
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

impl Tree {
    /// The number of nodes the document has once every alias is expanded, or `None` when it
    /// exceeds `limit` (an alias bomb). Linear in the tree size: each node is sized once.
    pub fn expanded_size(&self, limit: usize) -> Option<usize> {
        if !self
            .nodes
            .iter()
            .any(|n| matches!(n.kind, Kind::Alias { .. }))
        {
            return Some(self.nodes.len());
        }
        let mut size: Vec<usize> = vec![0; self.nodes.len()];
        let mut done = vec![false; self.nodes.len()];
        let mut stack: Vec<(NodeId, bool)> = vec![(self.root, false)];
        // Children of a node without allocating: keys and values of a mapping, items of a
        // sequence, the target of an alias.
        let child_count = |id: NodeId| match &self.nodes[id].kind {
            Kind::Scalar { .. } => 0,
            Kind::Alias { .. } => 1,
            Kind::Sequence { items, .. } => items.len(),
            Kind::Mapping { entries, .. } => entries.len() * 2,
        };
        let child = |id: NodeId, i: usize| match &self.nodes[id].kind {
            Kind::Alias { target } => *target,
            Kind::Sequence { items, .. } => items[i],
            Kind::Mapping { entries, .. } => {
                if i.is_multiple_of(2) {
                    entries[i / 2].0
                } else {
                    entries[i / 2].1
                }
            }
            Kind::Scalar { .. } => id,
        };
        while let Some((id, children_done)) = stack.pop() {
            if done[id] {
                continue;
            }
            let n = child_count(id);
            if children_done {
                let mut total: usize = 1;
                for i in 0..n {
                    total = total.saturating_add(size[child(id, i)]);
                }
                if total > limit {
                    return None;
                }
                size[id] = total;
                done[id] = true;
            } else {
                stack.push((id, true));
                for i in 0..n {
                    let c = child(id, i);
                    if !done[c] {
                        if stack.len() > self.nodes.len() * 2 + 16 {
                            return None; // a cycle (recursive alias)
                        }
                        stack.push((c, false));
                    }
                }
            }
        }
        Some(size[self.root])
    }

    /// Whether node `a` of this tree and node `b` of `other` mean the same. Inside mappings
    /// reached with `mask`, entries whose key is in `mask` are ignored on both sides, and the
    /// mask follows merge keys (`<<`), whose sources contribute to the same mapping.
    pub fn same(
        &self,
        a: NodeId,
        other: &Tree,
        b: NodeId,
        mask: Option<&[&str]>,
        seen: &mut SeenPairs,
    ) -> bool {
        let (na, nb) = (&self.nodes[a], &other.nodes[b]);
        if !na.same_meta(nb) {
            return false;
        }
        match (&na.kind, &nb.kind) {
            (
                Kind::Scalar {
                    value: va,
                    style: sa,
                    ..
                },
                Kind::Scalar {
                    value: vb,
                    style: sb,
                    ..
                },
            ) => {
                self.values[va.range()] == other.values[vb.range()]
                    && (*sa == Style::Plain) == (*sb == Style::Plain)
            }
            (Kind::Alias { target: ta }, Kind::Alias { target: tb }) => {
                // Shared subtrees are compared once, whatever number of aliases name them.
                !seen.insert((*ta, *tb, mask.is_some())) || self.same(*ta, other, *tb, mask, seen)
            }
            (Kind::Sequence { items: ia, .. }, Kind::Sequence { items: ib, .. }) => {
                ia.len() == ib.len()
                    && ia
                        .iter()
                        .zip(ib)
                        .all(|(&x, &y)| self.same(x, other, y, None, seen))
            }
            (Kind::Mapping { entries: ea, .. }, Kind::Mapping { entries: eb, .. }) => {
                let keep = |t: &Tree, k: NodeId| match (mask, t.scalar(k)) {
                    (Some(m), Some(key)) => !m.contains(&key),
                    _ => true,
                };
                let ea: Vec<_> = ea.iter().filter(|(k, _)| keep(self, *k)).collect();
                let eb: Vec<_> = eb.iter().filter(|(k, _)| keep(other, *k)).collect();
                ea.len() == eb.len()
                    && ea.iter().zip(&eb).all(|(&&(ka, va), &&(kb, vb))| {
                        let merge = self.is_merge_key(ka);
                        self.same(ka, other, kb, None, seen)
                            && self.same(va, other, vb, if merge { mask } else { None }, seen)
                    })
            }
            _ => false,
        }
    }
}

/// Node pairs already compared by [`Tree::same`] (so shared aliases are compared once).
pub type SeenPairs = std::collections::HashSet<(NodeId, NodeId, bool)>;

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
        Ok(match &self.nodes[id].kind {
            Kind::Scalar { value, style, .. } => {
                let plain = *style == Style::Plain && self.nodes[id].tag().is_none();
                Value::Scalar(self.values[value.range()].to_string(), plain)
            }
            Kind::Sequence { items, .. } => Value::Seq(
                items
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
        for &(k, v) in self.entries(map) {
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

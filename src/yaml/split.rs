//! Reading a big compose file in two parts on two cores: where the text can be cut
//! without changing its meaning ([`split_points`]), and joining the parts ([`parse_in_parts`]).

use super::events::{Parts, build};
use super::node::{Entries, append_from_back};
use super::{IN_SOURCE, Kind, Limits, NodeId, Span};

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
pub(super) fn split_points(text: &str) -> Option<(usize, usize)> {
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
pub(super) fn parse_in_parts(text: &str, p: usize, q: usize, limits: Limits) -> Option<Parts> {
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

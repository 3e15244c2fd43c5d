//! How the tree stores its nodes: a [`Node`] packed into 12 bytes ([`Packed`]), the arenas
//! of children, and the [`Entries`] of a mapping (keys stored, values found).

use super::{IN_SOURCE, Kind, Node, NodeId, Span, Style, ValueRef};

/// Texts from this size on are refused: node offsets keep four bits of each `u32` for
/// the node's kind.
pub(super) const MAX_TEXT: usize = 1 << POS_BITS;
pub(super) const POS_BITS: u32 = 28;
pub(super) const POS_MASK: u32 = (1 << POS_BITS) - 1;
/// In `Packed::start`: the node's variant (two bits) and its `flow` or `keep` flag.
pub(super) const FLAG: u32 = 1 << 30;
/// `Packed::data` of a scalar whose value is its source text, or the text inside its quotes.
pub(super) const WHOLE: u32 = u32::MAX;
pub(super) const INNER: u32 = u32::MAX - 1;

/// A [`Node`] in 12 bytes, as the tree stores it (a big file has hundreds of thousands).
/// `start` and `end` hold 28-bit offsets; the bits above hold the variant, a flag and a
/// scalar's style. `data` is an alias's target, a collection's index into
/// [`Nodes::spans`], or for a scalar [`WHOLE`], [`INNER`] or an index into [`Nodes::refs`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Packed {
    start: u32,
    end: u32,
    pub(super) data: u32,
}

/// The variants a [`Packed`] node holds in bits 28-29 of `start`.
pub(super) const SCALAR: u32 = 0;
pub(super) const MAPPING: u32 = 1;
pub(super) const SEQUENCE: u32 = 2;
pub(super) const ALIAS: u32 = 3;

impl Packed {
    #[inline]
    pub(super) fn variant(self) -> u32 {
        (self.start >> POS_BITS) & 3
    }

    #[inline]
    fn is_collection(self) -> bool {
        matches!(self.variant(), MAPPING | SEQUENCE)
    }
}

/// The nodes of a tree, packed, with the side tables that hold what does not fit.
#[derive(Debug, Clone, Default)]
pub(super) struct Nodes {
    pub(super) packed: Vec<Packed>,
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
    pub(super) fn with_capacity(n: usize) -> Nodes {
        Nodes {
            packed: Vec::with_capacity(n),
            spans: Vec::new(),
            refs: Vec::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.packed.len()
    }

    /// Store `node` (offsets under [`MAX_TEXT`]).
    pub(super) fn push(&mut self, node: Node) {
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
    pub(super) fn get(&self, id: NodeId) -> Node {
        self.decode(self.packed[id as usize])
    }

    #[inline]
    pub(super) fn decode(&self, p: Packed) -> Node {
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
    pub(super) fn value(&self, p: Packed) -> ValueRef {
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

    pub(super) fn start(&self, id: NodeId) -> u32 {
        self.packed[id as usize].start & POS_MASK
    }

    pub(super) fn end(&self, id: NodeId) -> u32 {
        self.packed[id as usize].end & POS_MASK
    }

    pub(super) fn set_end(&mut self, id: NodeId, end: u32) {
        let p = &mut self.packed[id as usize];
        p.end = (p.end & !POS_MASK) | end;
    }

    /// Set the children of collection `id`; `None` when it is not a collection.
    pub(super) fn set_span(&mut self, id: NodeId, run: Span) -> Option<()> {
        let p = self.packed[id as usize];
        if !p.is_collection() {
            return None;
        }
        self.spans[p.data as usize] = run;
        Some(())
    }

    /// The pairs of mapping `id`, when it is one.
    #[inline]
    pub(super) fn mapping_entries(&self, id: NodeId) -> Option<Span> {
        let p = self.packed[id as usize];
        (p.variant() == MAPPING).then(|| self.spans[p.data as usize])
    }

    /// The items of sequence `id`, when it is one.
    #[inline]
    pub(super) fn sequence_items(&self, id: NodeId) -> Option<Span> {
        let p = self.packed[id as usize];
        (p.variant() == SEQUENCE).then(|| self.spans[p.data as usize])
    }

    /// The value and style of scalar `id`, when it is one (what the hot lookups need,
    /// without decoding the whole node).
    #[inline]
    pub(super) fn scalar(&self, id: NodeId) -> Option<(ValueRef, Style)> {
        let p = self.packed[id as usize];
        if p.variant() != SCALAR {
            return None;
        }
        Some((self.value(p), style_from(p.end >> POS_BITS)))
    }

    /// The children of `id` as the expansion walk sees them: (variant, run or target).
    #[inline]
    pub(super) fn children(&self, id: NodeId) -> (u32, Span) {
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
    pub(super) fn alias_target(&self, id: NodeId) -> Option<NodeId> {
        let p = self.packed[id as usize];
        (p.variant() == ALIAS).then_some(p.data)
    }

    pub(super) fn is_flow(&self, id: NodeId) -> bool {
        let p = self.packed[id as usize];
        p.is_collection() && p.start & FLAG != 0
    }

    /// Make node `id` an alias of `target`.
    pub(super) fn set_alias(&mut self, id: NodeId, target: NodeId) {
        let p = &mut self.packed[id as usize];
        p.start = (p.start & POS_MASK) | ALIAS << POS_BITS;
        p.data = target;
    }

    /// Add the nodes of `next`, whose ids start at `self.len()`, shifting what they point
    /// at: node ids, pair and item runs, and values in the buffer of rewritten values.
    pub(super) fn append(&mut self, next: Nodes, pair_off: u32, item_off: u32, value_off: u32) {
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
pub(super) fn value_of(k: NodeId, far: &[(NodeId, NodeId)]) -> NodeId {
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
    pub(super) keys: &'t [NodeId],
    pub(super) far: &'t [(NodeId, NodeId)],
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
pub(super) fn append_from_back<T: Copy>(to: &mut Vec<T>, mut from: Vec<T>, f: impl Fn(T) -> T) {
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

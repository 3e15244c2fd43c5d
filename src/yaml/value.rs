//! What a node means with aliases and merge keys expanded: its expanded size (alias
//! bombs), a digest of it (comparing meanings), and a plain [`Value`].

use std::collections::HashMap;
use std::hash::Hasher;

use super::node::{ALIAS, MAPPING, SEQUENCE, value_of};
use super::{Kind, NodeId, Style, Tree};

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

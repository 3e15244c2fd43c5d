//! The compose view of a YAML tree: its services, and the style the file is written in.

use crate::source::{LineIndex, line_start, starts_line};
use crate::yaml::{Budget, Kind, Limits, NodeId, Style, Tree, Value};

/// Why a file could not be read as a compose file. Line and column are 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// One service under `services:`.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    /// The key node (`web` in `web:`).
    pub key: NodeId,
    /// The service's mapping, aliases followed.
    pub map: NodeId,
    /// The service is written as an alias (`web2: *web`): it shares its mapping with another node.
    pub is_alias: bool,
}

/// The deepest chain of merge keys followed when looking a key up (see
/// [`Tree::lookup`]); a deeper one is an error, never a key silently not found.
pub const MAX_MERGE_DEPTH: usize = 32;

/// The merge key at which a chain of `<<` merges below `map` (or below a mapping that is
/// one of its values, such as `build:`) goes deeper than [`MAX_MERGE_DEPTH`].
fn merges_too_deep(tree: &Tree, map: NodeId) -> Option<NodeId> {
    let mut starts = vec![map];
    starts.extend(
        tree.entries(map)
            .iter()
            .map(|(_, v)| tree.resolve(v))
            .filter(|&v| tree.is_mapping(v)),
    );
    // The deepest each mapping was reached at: a node is walked again only deeper.
    let mut seen: std::collections::HashMap<NodeId, usize> = std::collections::HashMap::new();
    for start in starts {
        let mut stack = vec![(start, 0usize)];
        while let Some((m, depth)) = stack.pop() {
            for (k, v) in tree.entries(m) {
                if !tree.is_merge_key(k) {
                    continue;
                }
                for src in tree.merge_sources(v) {
                    let src = tree.resolve(src);
                    if !tree.is_mapping(src) {
                        continue;
                    }
                    if depth + 1 > MAX_MERGE_DEPTH {
                        return Some(k);
                    }
                    if seen.get(&src).is_none_or(|&d| d < depth + 1) {
                        seen.insert(src, depth + 1);
                        stack.push((src, depth + 1));
                    }
                }
            }
        }
    }
    None
}

/// How the file writes things, learned from the file itself so new text looks native.
#[derive(Debug, Clone)]
pub struct FileStyle {
    /// Columns between a key and the dash of its block sequence (0 = indentless).
    pub seq_offset: usize,
    /// Quote character for new quoted scalars.
    pub quote: char,
    /// The file quotes some scalar (else optional quotes are left out, as the file does).
    pub quotes_values: bool,
    /// New lists are written in flow style (`[ALL]`) rather than block style.
    pub flow_lists: bool,
}

/// A parsed compose file.
pub struct Document {
    /// The tree, which also holds the text (see [`Document::text`]).
    pub tree: Tree,
    pub lines: LineIndex,
    /// The `services` mapping (aliases followed).
    pub services_map: NodeId,
    pub services: Vec<Service>,
    pub style: FileStyle,
}

/// Upper bound on expanded nodes; proportional to the file so big honest files still pass.
fn expansion_budget(tree: &Tree) -> usize {
    (tree.node_count() * 64).max(200_000)
}

impl Document {
    pub fn parse(text: String, limits: Limits) -> Result<Document, InputError> {
        let at_byte = |pos: usize, message: &str| {
            let (line, col) = LineIndex::new(&text).line_col(&text, pos);
            InputError {
                line,
                col,
                message: message.into(),
            }
        };
        if let Some(pos) = text.find('\0') {
            return Err(at_byte(
                pos,
                "the file contains a NUL byte; it is not a text file",
            ));
        }
        let bare_cr = text
            .match_indices('\r')
            .map(|(i, _)| i)
            .find(|&i| text.as_bytes().get(i + 1) != Some(&b'\n'));
        if let Some(pos) = bare_cr {
            return Err(at_byte(
                pos,
                "a bare carriage return (CR without LF) ends a line here; save the file with LF or CRLF line endings",
            ));
        }
        let tree = Tree::parse(text, limits).map_err(|e| InputError {
            line: e.line,
            col: e.col,
            message: format!("invalid YAML: {}", e.message),
        })?;
        let text = tree.text();
        // Independent passes over a big file run on both cores.
        let (lines, bounded) = crate::yaml::both(
            text.len() >= crate::yaml::PARALLEL_MIN,
            || LineIndex::new(text),
            || tree.expanded_size(expansion_budget(&tree)).is_some(),
        );
        let at = |id: NodeId, message: String| {
            let (line, col) = lines.line_col(text, tree.node(id).start());
            InputError { line, col, message }
        };
        let root = tree.resolve(tree.root);
        if !tree.is_mapping(root) {
            return Err(at(
                root,
                "not a compose file: the top level is not a mapping with a `services:` key".into(),
            ));
        }
        // Bound alias bombs before any rule looks at the file.
        if !bounded {
            return Err(at(
                root,
                "aliases expand to too many nodes (an alias bomb?)".into(),
            ));
        }

        let Some((skey, sval)) = tree.get(root, "services") else {
            return Err(at(root, not_compose_reason(&tree, root)));
        };
        let services_map = tree.resolve(sval);
        if !tree.is_mapping(services_map) {
            let what = if tree.is_null(services_map) {
                "`services:` is empty".to_string()
            } else {
                "`services:` must be a mapping of service names to their definitions".to_string()
            };
            return Err(at(skey, format!("not a compose file: {what}")));
        }
        let count = tree.entries(services_map).len();
        if count > limits.max_services {
            return Err(at(
                skey,
                format!(
                    "{count} services, over the limit of {} services per file",
                    limits.max_services
                ),
            ));
        }
        let mut services = Vec::new();
        for (k, v) in tree.entries(services_map) {
            let name = tree.scalar(k).unwrap_or("").to_string();
            if tree.is_merge_key(k) {
                return Err(at(
                    k,
                    "merge keys (`<<`) directly under `services:` are not supported".into(),
                ));
            }
            let map = tree.resolve(v);
            if !tree.is_mapping(map) {
                let what = if tree.is_null(map) {
                    "is empty"
                } else {
                    "is not a mapping"
                };
                return Err(at(
                    k,
                    format!("not a compose file: service {name:?} {what}"),
                ));
            }
            if merges_too_deep(&tree, map).is_some() {
                return Err(at(
                    k,
                    format!(
                        "service {name:?}: merge keys (`<<`) chain more than {MAX_MERGE_DEPTH} \
                         levels deep; keys beyond that would not be seen"
                    ),
                ));
            }
            let is_alias = matches!(tree.node(v).kind, Kind::Alias { .. });
            services.push(Service {
                name,
                key: k,
                map,
                is_alias,
            });
        }
        let style = learn_style(text, &tree, &services);
        Ok(Document {
            tree,
            lines,
            services_map,
            services,
            style,
        })
    }

    /// The text of the file.
    pub fn text(&self) -> &str {
        self.tree.text()
    }

    /// Give the text back, dropping the tree.
    pub fn into_text(self) -> String {
        self.tree.into_text()
    }

    /// 1-based line and column of a node.
    pub fn pos(&self, id: NodeId) -> (usize, usize) {
        self.lines.line_col(self.text(), self.tree.node(id).start())
    }

    /// A digest of what the file means, except for the hardening keys of its services (the
    /// only keys fixes touch): two files with equal digests differ at most in hardening.
    /// Compared before anything is written, so the tree of the original need not be kept.
    /// `None` when aliases nest too deeply to digest.
    pub fn digest(&self, hardening: &[&str]) -> Option<u64> {
        use std::hash::Hasher;
        let t = &self.tree;
        let mut memo = crate::yaml::DigestMemo::new();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let root = t.root;
        let feed_anchor = |h: &mut std::collections::hash_map::DefaultHasher, id: NodeId| {
            let a = t.anchor(id).unwrap_or("");
            h.write_usize(a.len());
            h.write(a.as_bytes());
        };
        feed_anchor(&mut h, root);
        let entries = t.entries(root);
        h.write_usize(entries.len());
        for (k, v) in entries {
            t.digest_into(&mut h, k, None, &mut memo, 0)?;
            if t.scalar(k) != Some("services") || t.is_merge_key(k) {
                t.digest_into(&mut h, v, None, &mut memo, 0)?;
                continue;
            }
            // Each service mapping is digested on its own, with its hardening keys masked
            // (on every core when there are many).
            feed_anchor(&mut h, v);
            let services = t.entries(t.resolve(v));
            let one = |(name, svc): (NodeId, NodeId)| {
                let mut memo = crate::yaml::DigestMemo::new();
                let mut h = std::collections::hash_map::DefaultHasher::new();
                t.digest_into(&mut h, name, None, &mut memo, 0)?;
                t.digest_into(&mut h, svc, Some(hardening), &mut memo, 0)?;
                Some(h.finish())
            };
            let digests: Option<Vec<u64>> = if services.len() >= 64 {
                use rayon::prelude::*;
                (0..services.len())
                    .into_par_iter()
                    .map(|i| one(services.get(i)?))
                    .collect()
            } else {
                services.iter().map(one).collect()
            };
            h.write_usize(services.len());
            for d in digests? {
                h.write_u64(d);
            }
        }
        Some(h.finish())
    }

    /// Whether `other` means exactly what this document means, except for the hardening
    /// keys of its services.
    pub fn same_outside(&self, other: &Document, hardening: &[&str]) -> bool {
        match (self.digest(hardening), other.digest(hardening)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }

    /// The meaning of the file with the hardening keys of every service masked out: two
    /// files with equal skeletons differ at most in hardening.
    pub fn skeleton(&self, hardening: &[&str]) -> Result<Value, String> {
        let mut budget = Budget(expansion_budget(&self.tree));
        let root = self.tree.resolve(self.tree.root);
        let Value::Map(entries) = self.tree.value(root, &mut budget)? else {
            return Err("top level is not a mapping".into());
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            if matches!(&k, Value::Scalar(s, _) if s == "services") {
                let Value::Map(svcs) = v else {
                    out.push((k, v));
                    continue;
                };
                let masked = svcs
                    .into_iter()
                    .map(|(name, svc)| {
                        let svc = match svc {
                            Value::Map(keys) => Value::Map(
                                keys.into_iter()
                                    .filter(|(key, _)| {
                                        !matches!(key, Value::Scalar(s, _) if hardening.contains(&s.as_str()))
                                    })
                                    .collect(),
                            ),
                            other => other,
                        };
                        (name, svc)
                    })
                    .collect();
                out.push((k, Value::Map(masked)));
            } else {
                out.push((k, v));
            }
        }
        Ok(Value::Map(out))
    }
}

fn not_compose_reason(tree: &Tree, root: NodeId) -> String {
    let has = |k: &str| tree.get(root, k).is_some();
    if has("apiVersion") && has("kind") {
        return "not a compose file: this looks like a Kubernetes manifest (no `services:` key)"
            .into();
    }
    if has("jobs") && (has("on") || has("true")) {
        return "not a compose file: this looks like a GitHub Actions workflow (no `services:` key)".into();
    }
    let entries = tree.entries(root);
    let v1 = !entries.is_empty()
        && entries.iter().all(|(_, v)| {
            let v = tree.resolve(v);
            tree.is_mapping(v) && (tree.get(v, "image").is_some() || tree.get(v, "build").is_some())
        });
    if v1 {
        return "compose file format v1 is not supported: its services sit at the top level; move them under a `services:` key".into();
    }
    "not a compose file: no top-level `services:` key".into()
}

fn learn_style(text: &str, tree: &Tree, services: &[Service]) -> FileStyle {
    let mut offsets: Vec<usize> = Vec::new();
    let (mut single, mut double) = (0usize, 0usize);
    let (mut flow_lists, mut block_lists) = (0usize, 0usize);
    for node in tree.all_nodes() {
        match &node.kind {
            Kind::Scalar {
                style: Style::SingleQuoted,
                ..
            } => single += 1,
            Kind::Scalar {
                style: Style::DoubleQuoted,
                ..
            } => double += 1,
            Kind::Mapping {
                entries,
                flow: false,
            } => {
                for (k, v) in tree.pairs(*entries) {
                    let Kind::Sequence { flow: false, items } = tree.node(v).kind else {
                        continue;
                    };
                    let Some(&first) = tree.seq(items).first() else {
                        continue;
                    };
                    let key_start = tree.node(k).start();
                    let item_start = tree.node(first).start();
                    if !starts_line(text, key_start) {
                        continue;
                    }
                    if let Some(dash) = dash_before(text, item_start)
                        && line_start(text, dash) > key_start
                    {
                        let dash_col = dash - line_start(text, dash);
                        let key_col = key_start - line_start(text, key_start);
                        if dash_col >= key_col {
                            offsets.push(dash_col - key_col);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    for s in services {
        for (_, v) in tree.entries(s.map) {
            match tree.node(v).kind {
                Kind::Sequence { flow: true, .. } => flow_lists += 1,
                Kind::Sequence { flow: false, .. } => block_lists += 1,
                _ => {}
            }
        }
    }
    let seq_offset = most_common(&offsets).unwrap_or(2);
    FileStyle {
        seq_offset,
        quote: if single > double { '\'' } else { '"' },
        quotes_values: single + double > 0,
        flow_lists: flow_lists > block_lists,
    }
}

fn most_common(v: &[usize]) -> Option<usize> {
    let mut counts: Vec<(usize, usize)> = Vec::new();
    for &x in v {
        match counts.iter_mut().find(|(k, _)| *k == x) {
            Some((_, c)) => *c += 1,
            None => counts.push((x, 1)),
        }
    }
    // Highest count wins; ties go to the value seen first.
    let mut best: Option<(usize, usize)> = None;
    for (k, c) in counts {
        if best.is_none_or(|(_, bc)| c > bc) {
            best = Some((k, c));
        }
    }
    best.map(|(k, _)| k)
}

/// The `-` that introduces the block sequence item whose content starts at `item_start`.
pub fn dash_before(text: &str, item_start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = item_start;
    while i > 0 {
        i -= 1;
        match bytes[i] {
            b'-' => return Some(i),
            b' ' | b'\t' | b'\n' | b'\r' => continue,
            _ => {
                // Anchors, tags or comments can sit between the dash and the content; skip
                // back over one such token on the same line.
                if bytes[i] == b'#' {
                    continue;
                }
                let ls = line_start(text, i);
                let line = &text[ls..i + 1];
                return line.rfind("- ").or_else(|| line.rfind('-')).map(|d| ls + d);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(s: &str) -> Document {
        Document::parse(s.to_string(), Limits::default()).unwrap()
    }

    const KEYS: &[&str] = &["cap_drop", "security_opt"];

    #[test]
    fn same_outside_ignores_only_service_hardening_keys() {
        let a = doc(
            "x-a: &a {restart: always}\nservices:\n  db: &db\n    <<: *a\n    image: postgres\n  r: *db\n  m:\n    <<: *db\n",
        );
        let hardened = doc(
            "x-a: &a {restart: always}\nservices:\n  db: &db\n    <<: *a\n    image: postgres\n    cap_drop: [ALL]\n  r: *db\n  m:\n    <<: *db\n    security_opt: [no-new-privileges:true]\n",
        );
        assert!(a.same_outside(&hardened, KEYS));
        let other = doc(
            "x-a: &a {restart: no}\nservices:\n  db: &db\n    <<: *a\n    image: postgres\n  r: *db\n  m:\n    <<: *db\n",
        );
        assert!(!a.same_outside(&other, KEYS));
        let image = doc(
            "x-a: &a {restart: always}\nservices:\n  db: &db\n    <<: *a\n    image: \"postgres\"\n  r: *db\n  m:\n    <<: *db\n",
        );
        assert!(
            !a.same_outside(&image, KEYS),
            "strict: fixes never requote, so requoting counts"
        );
        let number = doc("services:\n  db:\n    image: postgres\n    mem_limit: \"1\"\n");
        let plain = doc("services:\n  db:\n    image: postgres\n    mem_limit: 1\n");
        assert!(
            !number.same_outside(&plain, KEYS),
            "a plain 1 is not the string \"1\""
        );
    }

    #[test]
    fn hardening_an_anchor_used_outside_services_is_a_change() {
        let a = doc("services:\n  db: &db\n    image: postgres\nx-copy: *db\n");
        let b =
            doc("services:\n  db: &db\n    image: postgres\n    cap_drop: [ALL]\nx-copy: *db\n");
        assert!(!a.same_outside(&b, KEYS));
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut s = String::from("x-0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            s.push_str(&format!(
                "x-{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        s.push_str("services:\n  web:\n    image: nginx\n");
        let e = Document::parse(s, Limits::default())
            .err()
            .expect("refused");
        assert!(e.message.contains("alias bomb"), "{}", e.message);
    }
}

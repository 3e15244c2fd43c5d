//! `fix --into`: the hardening of a project written as a Compose overlay file, for
//! `docker compose -f compose.yaml -f compose.hardening.yaml up`, the base files untouched.
//!
//! Compose merges a later file into the earlier ones: `cap_add`, `cap_drop` and
//! `security_opt` are appended and de-duplicated, `user` and `userns_mode` are replaced,
//! and a key of the base is removed with `!reset`. So the overlay holds, per service, the
//! list entries the hardened project has and the base does not, and the scalar values that
//! differ. An existing overlay is updated in place: keys that already say what is wanted
//! are left as written (comments and all), changed keys are rewritten, keys and services
//! no longer needed are removed, and keys other than the hardening keys are never touched.

use crate::document::Document;
use crate::edit::Edit;
use crate::editor::{Editor, NewValue};
use crate::source::{eol_near, indent_of_line, next_line_start};
use crate::yaml::NodeId;

/// The keys an overlay holds, in the order they are written.
pub const KEYS: &[&str] = &["user", "userns_mode", "security_opt", "cap_drop", "cap_add"];
const LISTS: &[&str] = &["security_opt", "cap_drop", "cap_add"];

/// What one key of a service says after Compose merged the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A list (appended to the base's).
    List(Vec<String>),
    /// `!override [...]`: a list that replaces the base's.
    Override(Vec<String>),
    Scalar(String),
    /// `!reset null`: the base's key removed.
    Reset,
}

/// The overlay entries of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    pub service: String,
    pub keys: Vec<(&'static str, Value)>,
}

/// The value of `key` of `service` once `docs` are merged in order; `None` when unset.
pub fn merged(docs: &[&Document], service: &str, key: &str) -> Option<Value> {
    let mut out: Option<Value> = None;
    for d in docs {
        let Some(s) = d.services.iter().find(|s| s.name == service) else {
            continue;
        };
        let t = &d.tree;
        let Some((_, v, _)) = t.lookup(s.map, key) else {
            continue;
        };
        let tag = t.tag(v);
        if tag == Some("!reset") {
            out = None;
            continue;
        }
        let rv = t.resolve(v);
        if LISTS.contains(&key) {
            let mut items = match (tag, out.take()) {
                (Some("!override"), _) | (_, None) => Vec::new(),
                (_, Some(Value::List(i))) | (_, Some(Value::Override(i))) => i,
                (_, Some(_)) => Vec::new(),
            };
            for &i in t.items(rv) {
                if let Some(x) = t.scalar(i)
                    && !items.iter().any(|e| e == x)
                {
                    items.push(x.to_string());
                }
            }
            out = Some(Value::List(items));
        } else if let Some(x) = t.scalar(rv) {
            out = Some(Value::Scalar(x.to_string()));
        }
    }
    out
}

/// What the overlay must hold so that `before` plus the overlay means `after`.
pub fn wanted(before: &[&Document], after: &[&Document]) -> Vec<Want> {
    let mut names: Vec<&str> = Vec::new();
    for d in after {
        for s in &d.services {
            if !names.contains(&s.name.as_str()) {
                names.push(&s.name);
            }
        }
    }
    let mut out = Vec::new();
    for name in names {
        let mut keys = Vec::new();
        for &key in KEYS {
            let (b, a) = (merged(before, name, key), merged(after, name, key));
            if b == a {
                continue;
            }
            let v = match (b, a) {
                (_, None) => Value::Reset,
                (Some(Value::List(b)), Some(Value::List(a))) => {
                    if b.iter().all(|x| a.contains(x)) {
                        Value::List(a.into_iter().filter(|x| !b.contains(x)).collect())
                    } else {
                        Value::Override(a)
                    }
                }
                (_, Some(a)) => a,
            };
            keys.push((key, v));
        }
        if !keys.is_empty() {
            out.push(Want {
                service: name.to_string(),
                keys,
            });
        }
    }
    out
}

/// A list item or scalar as plain YAML when it reads back as the same string, else quoted.
fn item(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:=/".contains(c))
        && !s.ends_with(':')
        && s.parse::<f64>().is_err()
        && !s.starts_with(['-', ':'])
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n" | "~"
        );
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// The value as it is written after `key:` on one line (flow style), e.g. ` [ALL]`.
fn inline(v: &Value) -> String {
    let list = |items: &[String]| {
        let v: Vec<String> = items.iter().map(|i| item(i)).collect();
        format!("[{}]", v.join(", "))
    };
    match v {
        Value::List(i) => list(i),
        Value::Override(i) => format!("!override {}", list(i)),
        // Quoted always: `999:999` must not read as a number.
        Value::Scalar(s) => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
        Value::Reset => "!reset null".into(),
    }
}

/// A key and its value as block lines at `indent` (items two columns deeper).
fn block(key: &str, v: &Value, indent: &str, eol: &str) -> String {
    match v {
        Value::List(items) => {
            let mut s = format!("{indent}{key}:{eol}");
            for i in items {
                s.push_str(&format!("{indent}  - {}{eol}", item(i)));
            }
            s
        }
        other => format!("{indent}{key}: {}{eol}", inline(other)),
    }
}

/// A new overlay file holding `wants`.
pub fn render(wants: &[Want], bases: &[String], name: &str) -> String {
    let mut s = String::from(
        "# Hardening written by `compose-harden fix --into`; the base files are untouched.\n",
    );
    let files: Vec<String> = bases.iter().map(|b| format!("-f {b}")).collect();
    s.push_str(&format!(
        "# Use: docker compose {} -f {name} up\n",
        files.join(" ")
    ));
    if wants.is_empty() {
        s.push_str("services: {}\n");
        return s;
    }
    s.push_str("services:\n");
    for w in wants {
        s.push_str(&format!("  {}:\n", key_text(&w.service)));
        for (k, v) in &w.keys {
            s.push_str(&block(k, v, "    ", "\n"));
        }
    }
    s
}

fn key_text(name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        && !name.is_empty()
        && item(name) == name
    {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// What a key of the overlay says now.
fn current(doc: &Document, map: NodeId, key: &str) -> Option<(NodeId, NodeId, Value)> {
    let t = &doc.tree;
    let (k, v) = t.get(map, key)?;
    let items = |n: NodeId| -> Vec<String> {
        t.items(t.resolve(n))
            .iter()
            .filter_map(|&i| t.scalar(i).map(str::to_string))
            .collect()
    };
    let value = match t.tag(v) {
        Some("!reset") => Value::Reset,
        Some("!override") => Value::Override(items(v)),
        _ if t.is_sequence(t.resolve(v)) => Value::List(items(v)),
        _ => Value::Scalar(t.scalar(t.resolve(v))?.to_string()),
    };
    Some((k, v, value))
}

/// The edits that make the services of `doc` say `wants`, or `None` when the overlay is
/// laid out in a way not edited safely (it is then written anew).
fn edits(doc: &Document, wants: &[Want]) -> Option<Vec<Edit>> {
    let t = &doc.tree;
    let ed = Editor::new(doc);
    let mut out = Vec::new();
    for (si, s) in doc.services.iter().enumerate() {
        if s.is_alias || !t.is_mapping(s.map) || t.is_flow(s.map) {
            return None;
        }
        let want = wants.iter().find(|w| w.service == s.name);
        let entries = t.entries(s.map);
        let only_ours = entries
            .iter()
            .all(|(k, _)| t.scalar(k).is_some_and(|k| KEYS.contains(&k)));
        if want.is_none() && only_ours {
            out.push(ed.remove_entry(doc.services_map, si)?);
            continue;
        }
        for (idx, (k, _)) in entries.iter().enumerate() {
            let Some(name) = t.scalar(k).filter(|n| KEYS.contains(n)) else {
                continue;
            };
            let w = want.and_then(|w| w.keys.iter().find(|(key, _)| *key == name));
            let (_, v, now) = current(doc, s.map, name)?;
            match w {
                None => out.push(ed.remove_entry(s.map, idx)?),
                Some((_, w)) if *w == now => {}
                Some((_, w)) => out.push(replace(doc, k, v, w)),
            }
        }
        for (key, v) in want.map(|w| &w.keys[..]).unwrap_or_default() {
            if t.get(s.map, key).is_none() {
                let nv = match v {
                    Value::List(items) => NewValue::List(items.iter().map(|i| item(i)).collect()),
                    other => NewValue::Scalar(inline(other)),
                };
                out.push(ed.add_key(s.map, key, &nv)?);
            }
        }
    }
    Some(out)
}

/// Rewrite the value of `key` (after its colon) to say `w`, in the style it had.
fn replace(doc: &Document, k: NodeId, v: NodeId, w: &Value) -> Edit {
    let t = &doc.tree;
    let text = doc.text();
    let start = t.node(k).end();
    let end = t.node(v).end().max(start);
    let eol = eol_near(text, start);
    let content = match w {
        Value::List(items) if t.is_sequence(v) && !t.is_flow(v) => {
            let first = t.items(v).first().map(|&i| t.node(i).start());
            let indent = match first.and_then(|p| crate::document::dash_before(text, p)) {
                Some(dash) => indent_of_line(text, dash).to_string(),
                None => format!("{}  ", indent_of_line(text, t.node(k).start())),
            };
            let mut s = ":".to_string();
            for i in items {
                s.push_str(&format!("{eol}{indent}- {}", item(i)));
            }
            s
        }
        other => format!(": {}", inline(other)),
    };
    Edit {
        start,
        end,
        content,
        depth: 0,
    }
}

/// Services not yet in the overlay, as block text appended to its `services:` mapping.
fn new_services(doc: &Document, wants: &[Want]) -> Option<Edit> {
    let missing: Vec<&Want> = wants
        .iter()
        .filter(|w| !doc.services.iter().any(|s| s.name == w.service))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let t = &doc.tree;
    let text = doc.text();
    let (indent, at) = match doc.services.first() {
        Some(first) => (
            indent_of_line(text, t.node(first.key).start()).to_string(),
            next_line_start(text, t.node(doc.services_map).end()),
        ),
        None => ("  ".to_string(), text.len()),
    };
    let eol = eol_near(text, at.min(text.len().saturating_sub(1)));
    let inner = format!("{indent}  ");
    let mut s = String::new();
    if at == text.len() && !text.is_empty() && !text.ends_with('\n') {
        s.push_str(eol);
    }
    for w in missing {
        s.push_str(&format!("{indent}{}:{eol}", key_text(&w.service)));
        for (k, v) in &w.keys {
            s.push_str(&block(k, v, &inner, eol));
        }
    }
    Some(Edit::insertion(at, s))
}

/// The overlay text that holds `wants`: `existing` edited in place when it can be, else a
/// new file.
pub fn update(
    existing: Option<&Document>,
    wants: &[Want],
    bases: &[String],
    name: &str,
    reparse: impl Fn(String) -> Option<Document>,
) -> String {
    let Some(doc) = existing else {
        return render(wants, bases, name);
    };
    if doc.services.is_empty() || doc.tree.is_flow(doc.services_map) {
        return render(wants, bases, name);
    }
    let Some(first) = edits(doc, wants) else {
        return render(wants, bases, name);
    };
    let refs: Vec<&Edit> = first.iter().collect();
    let text = crate::edit::splice(doc.text(), &refs);
    let Some(doc) = reparse(text.clone()) else {
        return render(wants, bases, name);
    };
    if doc.services.is_empty() {
        return render(wants, bases, name);
    }
    match new_services(&doc, wants) {
        Some(e) => crate::edit::splice(doc.text(), &[&e]),
        None => text,
    }
}

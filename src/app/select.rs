//! Rule selection: `--select`/`--ignore` and the config's `select`/`ignore` name rules by
//! id or name; a name that is neither is an error naming the closest rule.

use crate::rules::{self, REGISTRY};

/// Edit distance between two short ASCII strings, case-insensitively.
fn distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    let b: Vec<u8> = b.into_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (prev + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The rule id closest to `code`: by number for `CH…` codes (`CH9` → `CH008`, `CH02` →
/// `CH002`), else by spelling of ids and names.
pub(super) fn closest(code: &str) -> &'static str {
    let digits = code
        .get(..2)
        .filter(|p| p.eq_ignore_ascii_case("ch"))
        .and_then(|_| code[2..].parse::<u32>().ok());
    if let Some(n) = digits {
        return REGISTRY
            .iter()
            .min_by_key(|r| r.id[2..].parse::<u32>().unwrap_or(0).abs_diff(n))
            .map(|r| r.id)
            .unwrap_or("CH001");
    }
    REGISTRY
        .iter()
        .min_by_key(|r| distance(code, r.id).min(distance(code, r.name)))
        .map(|r| r.id)
        .unwrap_or("CH001")
}

/// An error for the first entry of `codes` that names no rule; `what` says where it was
/// given (`--ignore`, `ignore in compose-harden.toml`).
pub(super) fn unknown(codes: &[String], what: &str) -> Option<String> {
    let bad = codes.iter().find(|c| rules::find(c).is_none())?;
    let near = closest(bad);
    let name = rules::find(near).map(|r| r.name).unwrap_or_default();
    Some(format!(
        "unknown rule {bad:?} in {what}; did you mean {near} ({name})? `compose-harden rules` lists them"
    ))
}

/// The rule ids turned off: those outside `select` (when it is not empty) and those in
/// `ignore`.
pub(super) fn disabled(select: &[String], ignore: &[String]) -> Vec<String> {
    let mut out: Vec<String> = ignore
        .iter()
        .filter_map(|c| rules::find(c))
        .map(|r| r.id.to_string())
        .collect();
    if !select.is_empty() {
        let on: Vec<&str> = select
            .iter()
            .filter_map(|c| rules::find(c))
            .map(|r| r.id)
            .collect();
        out.extend(
            REGISTRY
                .iter()
                .filter(|r| !on.contains(&r.id))
                .map(|r| r.id.to_string()),
        );
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closest_rule_is_named() {
        assert_eq!(closest("CH9"), "CH008");
        assert_eq!(closest("CH02"), "CH002");
        assert_eq!(closest("ch3"), "CH003");
        assert_eq!(closest("cap-drop-al"), "CH003");
        assert_eq!(closest("privilegd"), "CH005");
        assert!(unknown(&["CH003".into(), "no-new-privileges".into()], "--ignore").is_none());
        let e = unknown(&["CH9".into()], "--ignore").unwrap();
        assert_eq!(
            e,
            "unknown rule \"CH9\" in --ignore; did you mean CH008 (starved-caps)? `compose-harden rules` lists them"
        );
    }

    #[test]
    fn select_turns_off_every_other_rule_and_ignore_wins() {
        let d = disabled(&["CH003".into(), "privileged".into()], &["CH005".into()]);
        assert_eq!(
            d,
            [
                "CH001", "CH002", "CH004", "CH005", "CH006", "CH007", "CH008"
            ]
        );
        assert!(disabled(&[], &[]).is_empty());
    }
}

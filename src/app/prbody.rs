//! The pull-request body of `fix --pr-body FILE|-`: the Markdown report with each file's
//! table folded in `<details>`, the confidence legend, and a size cap under GitHub's
//! 65,536-character limit, saying how many files were left out.

use crate::knowledge::CONFIDENCE_LEGEND;

/// Largest body written, in characters (GitHub refuses bodies over 65,536).
pub(super) const MAX_BODY: usize = 60_000;

/// The confidence legend as a Markdown list.
pub(super) fn legend_markdown() -> String {
    let mut s = String::from("\n<details><summary>What the confidence levels mean</summary>\n\n");
    for (level, meaning) in CONFIDENCE_LEGEND {
        s.push_str(&format!("- **{level}**: {meaning}\n"));
    }
    s.push_str("\n</details>\n");
    s
}

/// Fold each file section (`### \`path\``) of `body` into `<details>`, add the legend, and
/// keep the whole under `max` characters by leaving out the last file sections.
pub(super) fn shape(body: &str, max: usize) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let mut rest = body;
    while let Some(i) = rest[1..].find("\n### ").map(|i| i + 1) {
        parts.push(&rest[..i]);
        rest = &rest[i..];
    }
    parts.push(rest);
    let (head, sections) = parts.split_first().expect("at least one part");
    let is_file = |s: &str| s.starts_with("\n### `");
    let files: Vec<String> = sections
        .iter()
        .filter(|s| is_file(s))
        .map(|s| fold(s))
        .collect();
    let tail: String = sections.iter().filter(|s| !is_file(s)).copied().collect();
    let legend = legend_markdown();
    let mut out = head.to_string();
    let mut tail = tail + &legend;
    if out.len() + tail.len() > max {
        // The closing sections (what needs a human, how to test) are cut last.
        tail = cut(&tail, max.saturating_sub(out.len() + 200));
    }
    let mut left_out = 0;
    for f in &files {
        if out.len() + f.len() + tail.len() + 200 > max {
            left_out += 1;
            continue;
        }
        out.push_str(f);
    }
    if left_out > 0 {
        out.push_str(&format!(
            "\n**{left_out} more file{} left out** to keep this description under {max} characters; `compose-harden fix --diff` shows every change.\n",
            if left_out == 1 { "" } else { "s" }
        ));
    }
    out.push_str(&tail);
    out
}

/// `### \`path\`` and its table, as a `<details>` block.
fn fold(section: &str) -> String {
    let body = section.trim_start_matches('\n');
    let (title, table) = body.split_once('\n').unwrap_or((body, ""));
    let name = title.trim_start_matches("### ");
    let rows = table.lines().filter(|l| l.starts_with("| `")).count();
    format!(
        "\n<details open><summary>{name}: {rows} change{}</summary>\n\n{}\n</details>\n",
        if rows == 1 { "" } else { "s" },
        table.trim_matches('\n')
    )
}

/// At most `max` bytes of `text`, cut at a line end, with a note when lines were cut.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut out = String::new();
    let mut dropped = 0;
    for line in text.split_inclusive('\n') {
        if out.len() + line.len() + 80 > max {
            dropped += 1;
        } else {
            out.push_str(line);
        }
    }
    out.push_str(&format!("\n({dropped} more lines left out)\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(files: usize) -> String {
        let mut s = String::from("## Least privilege\n\nThis change hardens things.\n");
        for i in 0..files {
            s.push_str(&format!(
                "\n### `stack{i}/compose.yaml`\n\n| service | change | why | confidence |\n|---|---|---|---|\n| `db` | add cap_drop: [ALL] | {} | verified |\n",
                "a reason ".repeat(20)
            ));
        }
        s.push_str("\n### How to test\n\n1. up\n");
        s
    }

    #[test]
    fn small_bodies_are_folded_whole_with_the_legend() {
        let out = shape(&body(2), MAX_BODY);
        assert_eq!(out.matches("<details open><summary>`stack").count(), 2);
        assert!(
            out.contains("<summary>`stack1/compose.yaml`: 1 change</summary>"),
            "{out}"
        );
        assert!(out.contains("- **from-source**: "));
        assert!(out.contains("### How to test"));
        assert!(!out.contains("left out"));
    }

    #[test]
    fn big_bodies_stay_under_the_cap_and_count_what_was_left_out() {
        let out = shape(&body(1000), MAX_BODY);
        assert!(out.len() < MAX_BODY, "{}", out.len());
        let kept = out.matches("<details open>").count();
        assert!(kept > 10 && kept < 1000);
        assert!(
            out.contains(&format!("**{} more files left out**", 1000 - kept)),
            "{kept}"
        );
        assert!(out.ends_with("</details>\n"));
    }
}

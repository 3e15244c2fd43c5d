//! Findings rendered for people and machines: text, JSON, SARIF 2.1.0, GitHub workflow
//! annotations and a Markdown pull-request body. Every renderer takes the same data and
//! returns a string; sorting is by file, then position, then rule.

use serde::Serialize;
use serde_json::{Value, json};

use crate::edit::{Applicability, Edit};
use crate::escape::{
    gh_data as escape_data, gh_property as escape_property, md_code, md_text, uri_path, visible,
};
use crate::rules::{self, Diagnostic, REGISTRY};

/// The findings of one file; `applied` says which fixes `fix` applied, when it ran.
pub struct FileReport<'a> {
    pub path: &'a str,
    pub diagnostics: &'a [Diagnostic],
    pub applied: Option<&'a [bool]>,
}

/// A file that could not be processed.
pub struct ErrorReport<'a> {
    pub path: &'a str,
    pub at: Option<(usize, usize)>,
    pub message: &'a str,
}

pub fn text(files: &[FileReport]) -> String {
    let mut out = String::new();
    for f in files {
        for d in f.diagnostics {
            out.push_str(&format!(
                "{}:{}:{}: {} {}\n",
                visible(f.path),
                d.line,
                d.column,
                d.rule,
                visible(&d.message)
            ));
            match (&d.fix, &d.fix_title) {
                (Some(fix), Some(title)) => out.push_str(&format!(
                    "  fix ({}): {}\n",
                    fix.applicability.as_str(),
                    visible(title)
                )),
                _ => out.push_str("  no fix\n"),
            }
            let src = d
                .source
                .as_deref()
                .map(|s| format!("; {}", visible(s)))
                .unwrap_or_default();
            out.push_str(&format!(
                "  why: {} [{}; {}{src}]\n",
                visible(&d.reason),
                d.confidence.as_str(),
                d.evidence.as_str()
            ));
        }
    }
    out
}

/// The JSON report; its schema is documented in `docs/json-schema.json`.
#[derive(Serialize)]
struct JsonReport<'a> {
    version: u32,
    tool: &'static str,
    files: Vec<JsonFile<'a>>,
    errors: Vec<JsonError<'a>>,
}

#[derive(Serialize)]
struct JsonFile<'a> {
    path: &'a str,
    findings: Vec<JsonFinding<'a>>,
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    rule: &'a str,
    name: &'a str,
    service: &'a str,
    line: usize,
    column: usize,
    message: &'a str,
    reason: &'a str,
    confidence: &'a str,
    evidence: &'a str,
    source: Option<&'a str>,
    fix: Option<JsonFix<'a>>,
}

#[derive(Serialize)]
struct JsonFix<'a> {
    title: &'a str,
    applicability: &'a str,
    applied: Option<bool>,
    edits: &'a [Edit],
}

#[derive(Serialize)]
struct JsonError<'a> {
    path: &'a str,
    line: Option<usize>,
    column: Option<usize>,
    message: &'a str,
}

pub fn json(files: &[FileReport], errors: &[ErrorReport]) -> String {
    let report = JsonReport {
        version: 1,
        tool: "compose-harden",
        files: files
            .iter()
            .map(|f| JsonFile {
                path: f.path,
                findings: f
                    .diagnostics
                    .iter()
                    .enumerate()
                    .map(|(i, d)| JsonFinding {
                        rule: d.rule,
                        name: d.rule_name,
                        service: &d.service,
                        line: d.line,
                        column: d.column,
                        message: &d.message,
                        reason: &d.reason,
                        confidence: d.confidence.as_str(),
                        evidence: d.evidence.as_str(),
                        source: d.source.as_deref(),
                        fix: d.fix.as_ref().map(|fix| JsonFix {
                            title: d.fix_title.as_deref().unwrap_or(""),
                            applicability: fix.applicability.as_str(),
                            applied: f.applied.map(|a| a[i]),
                            edits: &fix.edits,
                        }),
                    })
                    .collect(),
            })
            .collect(),
        errors: errors
            .iter()
            .map(|e| JsonError {
                path: e.path,
                line: e.at.map(|a| a.0),
                column: e.at.map(|a| a.1),
                message: e.message,
            })
            .collect(),
    };
    let mut s = serde_json::to_string_pretty(&report).expect("plain data serialises");
    s.push('\n');
    s
}

fn sarif_rule(r: &rules::Rule) -> Value {
    let doc = rules::explanation(r);
    json!({
        "id": r.id,
        "name": r.name,
        "shortDescription": {"text": r.summary},
        "fullDescription": {"text": doc.lines().find(|l| !l.starts_with('#') && !l.trim().is_empty()).unwrap_or(r.summary)},
        "help": {"text": doc, "markdown": doc},
        "helpUri": format!("https://github.com/compose-harden/compose-harden/blob/main/src/rules/{}.rs", r.name.replace('-', "_")),
        "defaultConfiguration": {"level": if r.fixable { "warning" } else { "error" }},
        "properties": {"tags": ["security", "docker-compose"]}
    })
}

/// SARIF 2.1.0, as GitHub code scanning takes it. Fixes become SARIF `fixes` with byte
/// regions, so a viewer can apply them.
pub fn sarif(files: &[FileReport], errors: &[ErrorReport]) -> String {
    let rules: Vec<Value> = REGISTRY.iter().map(sarif_rule).collect();
    let mut results = Vec::new();
    for f in files {
        for d in f.diagnostics {
            let index = REGISTRY.iter().position(|r| r.id == d.rule).unwrap_or(0);
            let level = if d.fix.is_some() { "warning" } else { "error" };
            let mut result = json!({
                "ruleId": d.rule,
                "ruleIndex": index,
                "level": level,
                "message": {"text": format!("{}. Why: {} [{}; {}]", d.message, d.reason, d.confidence.as_str(), d.evidence.as_str())},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri_path(f.path)},
                        "region": {"startLine": d.line, "startColumn": d.column}
                    }
                }],
                "partialFingerprints": {"composeHarden/v1": format!("{}:{}:{}", f.path, d.service, d.rule)},
                "properties": {
                    "service": d.service,
                    "confidence": d.confidence.as_str(),
                    "evidence": d.evidence.as_str(),
                    "applicability": d.fix.as_ref().map(|x| x.applicability.as_str()),
                }
            });
            if let (Some(fix), Some(title)) = (&d.fix, &d.fix_title) {
                let replacements: Vec<Value> = fix
                    .edits
                    .iter()
                    .map(|e| {
                        json!({
                            "deletedRegion": {"byteOffset": e.start, "byteLength": e.end - e.start},
                            "insertedContent": {"text": e.content}
                        })
                    })
                    .collect();
                result["fixes"] = json!([{
                    "description": {"text": format!("{title} ({})", fix.applicability.as_str())},
                    "artifactChanges": [{"artifactLocation": {"uri": uri_path(f.path)}, "replacements": replacements}]
                }]);
            }
            results.push(result);
        }
    }
    let notifications: Vec<Value> = errors
        .iter()
        .map(|e| {
            let mut n = json!({
                "level": "error",
                "message": {"text": e.message},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri_path(e.path)}}}]
            });
            if let Some((l, c)) = e.at {
                n["locations"][0]["physicalLocation"]["region"] =
                    json!({"startLine": l, "startColumn": c});
            }
            n
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "compose-harden",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/compose-harden/compose-harden",
                "rules": rules
            }},
            "invocations": [{"executionSuccessful": errors.is_empty(), "toolExecutionNotifications": notifications}],
            "results": results
        }]
    });
    let mut s = serde_json::to_string_pretty(&log).expect("plain data serialises");
    s.push('\n');
    s
}

/// GitHub workflow commands: one `::warning` (or `::error`) annotation per finding.
pub fn github(files: &[FileReport], errors: &[ErrorReport]) -> String {
    let mut out = String::new();
    for f in files {
        for d in f.diagnostics {
            let (kind, fix) = match (&d.fix, &d.fix_title) {
                (Some(x), Some(t)) => (
                    "warning",
                    format!(" Fix ({}): {t}.", x.applicability.as_str()),
                ),
                _ => ("error", " No automatic fix.".to_string()),
            };
            out.push_str(&format!(
                "::{kind} file={},line={},col={},title={}::{}\n",
                escape_property(f.path),
                d.line,
                d.column,
                escape_property(&format!("{} {}", d.rule, d.rule_name)),
                escape_data(&format!(
                    "{}.{fix} Why: {} [{}; {}]",
                    d.message,
                    d.reason,
                    d.confidence.as_str(),
                    d.evidence.as_str()
                ))
            ));
        }
    }
    for e in errors {
        let (l, c) = e.at.unwrap_or((1, 1));
        out.push_str(&format!(
            "::error file={},line={l},col={c},title=compose-harden::{}\n",
            escape_property(e.path),
            escape_data(e.message)
        ));
    }
    out
}

/// A pull-request body: what changed per file and service and why, what needs a human,
/// and how to test. `did` is true after `fix` ran, false for a preview.
pub fn markdown(files: &[FileReport], errors: &[ErrorReport], did: bool) -> String {
    let changed = |f: &FileReport, i: usize, d: &Diagnostic| match f.applied {
        Some(a) => a[i],
        None => d
            .fix
            .as_ref()
            .is_some_and(|x| x.applicability == Applicability::Verified),
    };
    let mut services = std::collections::BTreeSet::new();
    let mut n_files = 0;
    for f in files {
        let mut any = false;
        for (i, d) in f.diagnostics.iter().enumerate() {
            if changed(f, i, d) {
                services.insert((f.path, d.service.as_str()));
                any = true;
            }
        }
        n_files += usize::from(any);
    }
    let verb = if did { "hardens" } else { "would harden" };
    let mut out = format!(
        "## Least privilege for Docker Compose services\n\nThis change {verb} **{} service{}** in **{n_files} file{}** with \
         [compose-harden](https://github.com/compose-harden/compose-harden): capabilities dropped to what each \
         service needs, no privilege escalation through setuid binaries, and non-root users where the image \
         can run that way. Only hardening lines are added; nothing else in the files changes.\n",
        services.len(),
        if services.len() == 1 { "" } else { "s" },
        if n_files == 1 { "" } else { "s" },
    );
    for f in files {
        let rows: Vec<(usize, &Diagnostic)> = f
            .diagnostics
            .iter()
            .enumerate()
            .filter(|(i, d)| changed(f, *i, d))
            .collect();
        if rows.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "\n### {}\n\n| service | change | why | confidence | evidence |\n|---|---|---|---|---|\n",
            md_code(f.path)
        ));
        for (_, d) in rows {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                md_code(&d.service),
                md_text(d.fix_title.as_deref().unwrap_or("")),
                md_text(&d.reason),
                d.confidence.as_str(),
                d.evidence.as_str()
            ));
        }
    }
    let mut review = Vec::new();
    for f in files {
        for (i, d) in f.diagnostics.iter().enumerate() {
            if changed(f, i, d) {
                continue;
            }
            let what = match (&d.fix, &d.fix_title) {
                (Some(_), Some(t)) => {
                    format!("not applied, may break the service: {}", md_text(t))
                }
                _ => "no automatic fix".to_string(),
            };
            review.push(format!(
                "- {} service {}: {} {} ({what}). {}",
                md_code(f.path),
                md_code(&d.service),
                d.rule,
                md_text(&d.message),
                md_text(&d.reason)
            ));
        }
    }
    for e in errors {
        review.push(format!(
            "- {}: could not be processed: {}",
            md_code(e.path),
            md_text(e.message)
        ));
    }
    if !review.is_empty() {
        out.push_str("\n### Needs a human\n\n");
        for r in review {
            out.push_str(&r);
            out.push('\n');
        }
    }
    out.push_str(
        "\n### How to test\n\n\
         1. `docker compose up -d`, then `docker compose ps`: every service is up and healthy.\n\
         2. Restart once more (`docker compose restart`): entrypoints that chown data directories behave differently on a second start.\n\
         3. `docker compose top`: services whose entrypoint steps down from root run as their service user, not root.\n\
         4. If a container fails, `compose-harden why \"<log line>\"` names the capability or setting to add back.\n",
    );
    out
}

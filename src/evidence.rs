//! The evidence reader: what a Dockerfile and the start scripts of an image say about the
//! privileges it needs. Pure text in, evidence lines out (`file:line` and the line), and a
//! proposed profile built only from those lines. The profiler (`compose-harden profile`),
//! the Dockerfile reader of `build:` services and the image inspection all read through
//! here, so the logic lives once.

mod lex;
mod propose;

use serde::{Deserialize, Serialize};

pub use propose::{Proposal, is_root, propose};

/// One line of a Dockerfile or script that decides privileges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The file as shown to users (`Dockerfile`, `docker-entrypoint.sh`).
    pub file: String,
    /// 1-based line number (the first line of a continued line).
    pub line: usize,
    /// The line, trimmed and cut to a readable length.
    pub text: String,
    pub finding: Finding,
}

/// What a line does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Finding {
    /// The Dockerfile's `USER` (the final stage's last one wins).
    User { user: String },
    /// The Dockerfile's `ENTRYPOINT` or `CMD`, as words.
    Start {
        instruction: String,
        words: Vec<String>,
    },
    /// A start script steps down from root to another user.
    StepDown { tool: String, user: Option<String> },
    /// s6-overlay supervises the container (it needs root and several capabilities).
    S6Overlay,
    /// `sudo`: a setuid helper.
    Sudo,
    /// Changes ownership at start (`chown`, or `find … -exec chown`).
    Chown { paths: Vec<String>, recursive: bool },
    /// Changes modes at start.
    Chmod { paths: Vec<String> },
    /// Makes a file setuid or setgid (`chmod u+s`, `chmod 4755`).
    SetuidBit { paths: Vec<String> },
    /// Gives a file capabilities (`setcap cap_net_bind_service+ep /bin/x`).
    Setcap {
        caps: Vec<String>,
        paths: Vec<String>,
    },
    /// Runs `ping` (a raw socket).
    Ping,
    /// Starts a daemon whose root master changes user for its workers itself.
    Daemon { name: String },
}

impl Finding {
    /// Whether it switches user or ownership at start (and so needs capabilities as root).
    pub fn drops_privileges(&self) -> bool {
        matches!(self, Finding::StepDown { .. } | Finding::Chown { .. })
    }
}

/// Longest line text kept in an evidence line.
const MAX_TEXT: usize = 160;

fn evidence(file: &str, line: usize, text: &str, finding: Finding) -> Evidence {
    let text = text.trim();
    let text = match text.char_indices().nth(MAX_TEXT) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    };
    Evidence {
        file: file.to_string(),
        line,
        text,
        finding,
    }
}

/// Logical lines of a shell script or Dockerfile: `\` continuations joined, with the
/// number of the line each starts on.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if cur.is_empty() {
            start = i + 1;
        }
        if let Some(body) = line.trim_end().strip_suffix('\\') {
            cur.push_str(body);
            cur.push(' ');
            continue;
        }
        cur.push_str(line);
        if !cur.trim().is_empty() {
            out.push((start, std::mem::take(&mut cur)));
        }
        cur.clear();
    }
    if !cur.trim().is_empty() {
        out.push((start, cur));
    }
    out
}

/// What a start script (or a shell command line) does that decides privileges.
pub fn read_script(file: &str, text: &str) -> Vec<Evidence> {
    let mut out = Vec::new();
    for (n, line) in logical_lines(text) {
        if line.trim_start().starts_with('#') {
            continue;
        }
        for finding in lex::commands(&line).iter().flat_map(|c| read_command(c)) {
            out.push(evidence(file, n, &line, finding));
        }
    }
    out
}

/// The Dockerfile's findings (final stage only, through the stages it is built from),
/// and the local files its final stage copies in that look like start scripts.
pub fn read_dockerfile(file: &str, text: &str) -> (Vec<Evidence>, Vec<String>) {
    type Stage = (Option<String>, Vec<Evidence>, Vec<String>);
    let mut stages: Vec<Stage> = Vec::new();
    for (n, line) in logical_lines(text) {
        let trimmed = line.trim();
        if trimmed.starts_with('#') {
            continue;
        }
        let (instr, rest) = trimmed
            .split_once(char::is_whitespace)
            .unwrap_or((trimmed, ""));
        let rest = rest.trim();
        let instr = instr.to_ascii_uppercase();
        if instr == "FROM" {
            let words: Vec<&str> = rest
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let name = match words.as_slice() {
                [_, a, n, ..] if a.eq_ignore_ascii_case("as") => Some(n.to_ascii_lowercase()),
                _ => None,
            };
            let base = words.first().map(|w| w.to_ascii_lowercase());
            let parent = stages
                .iter()
                .rev()
                .find(|s| s.0.is_some() && s.0 == base)
                .cloned();
            let (_, ev, scripts) = parent.unwrap_or_default();
            stages.push((name, ev, scripts));
            continue;
        }
        let Some((_, ev, scripts)) = stages.last_mut() else {
            continue;
        };
        let push = |ev: &mut Vec<Evidence>, f: Finding| ev.push(evidence(file, n, trimmed, f));
        match instr.as_str() {
            "USER" => push(
                ev,
                Finding::User {
                    user: rest.to_string(),
                },
            ),
            "ENTRYPOINT" | "CMD" => {
                for e in read_start(file, n, trimmed, &instr, exec_form(rest)) {
                    ev.push(e);
                }
            }
            // Build-time commands: only what stays in the image matters.
            "RUN" => {
                for f in lex::commands(rest).iter().flat_map(|c| read_command(c)) {
                    if matches!(
                        f,
                        Finding::SetuidBit { .. } | Finding::Setcap { .. } | Finding::S6Overlay
                    ) {
                        push(ev, f);
                    }
                }
            }
            "COPY" | "ADD" => {
                if rest.contains("s6-overlay") {
                    push(ev, Finding::S6Overlay);
                }
                if rest.contains("--from") {
                    continue;
                }
                let words: Vec<&str> = rest
                    .split_whitespace()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                if let Some((_, srcs)) = words.split_last() {
                    for src in srcs {
                        if src.ends_with(".sh") || src.contains("entrypoint") {
                            scripts.push(src.trim_matches('"').to_string());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let (_, ev, scripts) = stages.pop().unwrap_or_default();
    (ev, scripts)
}

/// What the start command (`ENTRYPOINT`/`CMD` words, or an image config's) does, then the
/// start itself; `text` is the line shown.
pub fn read_start(
    file: &str,
    line: usize,
    text: &str,
    instruction: &str,
    words: Vec<String>,
) -> Vec<Evidence> {
    let mut out: Vec<Evidence> = read_command(&words)
        .into_iter()
        .filter(|f| !matches!(f, Finding::Chmod { .. }))
        .map(|f| evidence(file, line, text, f))
        .collect();
    out.push(evidence(
        file,
        line,
        text,
        Finding::Start {
            instruction: instruction.to_string(),
            words,
        },
    ));
    out
}

/// The programs a script may run: the first word of each command, what `.`/`source`
/// read, and every absolute path (what `sudo`, `gosu` or a wrapper runs).
pub fn programs(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (_, line) in logical_lines(text) {
        if line.trim_start().starts_with('#') {
            continue;
        }
        for c in lex::commands(&line) {
            let first = match c.first().map(String::as_str) {
                Some("." | "source") => c.get(1),
                _ => c.first(),
            };
            let paths = c.iter().skip(1).filter(|w| w.starts_with('/'));
            for n in first.into_iter().chain(paths) {
                if !out.contains(n) {
                    out.push(n.clone());
                }
            }
        }
    }
    out
}

/// The words of an `ENTRYPOINT`/`CMD`: the JSON exec form, or the shell form as one
/// `sh -c` string.
pub fn exec_form(rest: &str) -> Vec<String> {
    match serde_json::from_str::<Vec<String>>(rest) {
        Ok(words) => words,
        Err(_) => vec!["/bin/sh".into(), "-c".into(), rest.to_string()],
    }
}

fn base(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// Findings of one simple command (its words, prefixes such as `exec` already removed).
fn read_command(words: &[String]) -> Vec<Finding> {
    let Some(first) = words.first() else {
        return Vec::new();
    };
    let args = &words[1..];
    let prog = base(first);
    let mut out = Vec::new();
    let step = |tool: &str, user: Option<&str>| Finding::StepDown {
        tool: tool.into(),
        user: user.map(str::to_string),
    };
    let first_arg = args.first().map(String::as_str);
    match prog {
        "gosu" | "su-exec" | "s6-setuidgid" => out.push(step(prog, first_arg)),
        "setpriv"
            if args
                .iter()
                .any(|a| a.starts_with("--re") || a.contains("groups")) =>
        {
            out.push(step("setpriv", option_value(args, "--reuid")))
        }
        "chroot" if args.iter().any(|a| a.starts_with("--userspec")) => {
            out.push(step("chroot --userspec", option_value(args, "--userspec")))
        }
        "chpst" if args.iter().any(|a| a.starts_with("-u")) => {
            out.push(step("chpst", option_value(args, "-u")))
        }
        "runuser" => out.push(step("runuser", option_value(args, "-u").or(first_arg))),
        "su" => out.push(step("su", su_user(args))),
        "sudo" => out.push(Finding::Sudo),
        "chown" => {
            let plain: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
            let recursive = args.iter().any(|a| is_recursive(a));
            let paths = plain.iter().skip(1).map(|s| s.to_string()).collect();
            out.push(Finding::Chown { paths, recursive });
        }
        "chmod" => {
            let plain: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
            if let Some((mode, paths)) = plain.split_first() {
                let paths = paths.iter().map(|s| s.to_string()).collect();
                out.push(if sets_id_bit(mode) {
                    Finding::SetuidBit { paths }
                } else {
                    Finding::Chmod { paths }
                });
            }
        }
        "find" => {
            let paths: Vec<String> = args
                .iter()
                .take_while(|a| !a.starts_with(['-', '!', '(', '\\']))
                .cloned()
                .collect();
            let exec = args.iter().position(|a| a == "-exec" || a == "-execdir");
            if let Some(i) = exec {
                if args.get(i + 1).is_some_and(|p| base(p) == "chown") {
                    out.push(Finding::Chown {
                        paths,
                        recursive: true,
                    });
                } else if args.get(i + 1).is_some_and(|p| base(p) == "chmod") {
                    out.push(Finding::Chmod { paths });
                }
            }
        }
        "setcap" => {
            let plain: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
            if !args.iter().any(|a| a == "-r")
                && let Some((caps, paths)) = plain.split_first()
            {
                out.push(Finding::Setcap {
                    caps: cap_names(caps),
                    paths: paths.iter().map(|s| s.to_string()).collect(),
                });
            }
        }
        "ping" | "ping6" | "fping" => out.push(Finding::Ping),
        "init" if first == "/init" => out.push(Finding::S6Overlay),
        "s6-svscan" | "with-contenv" | "s6-overlay-suexec" => out.push(Finding::S6Overlay),
        "nginx" | "php-fpm" | "httpd" | "apache2" | "apache2ctl" | "apache2-foreground"
        | "httpd-foreground" => out.push(Finding::Daemon { name: prog.into() }),
        p if p.starts_with("php-fpm") => out.push(Finding::Daemon {
            name: "php-fpm".into(),
        }),
        _ => {}
    }
    if prog == "sh" || prog == "bash" || prog == "ash" || prog == "dash" {
        if let Some(script) = args
            .iter()
            .position(|a| a == "-c")
            .and_then(|i| args.get(i + 1))
        {
            out.extend(lex::commands(script).iter().flat_map(|c| read_command(c)));
        }
    } else if prog == "sudo" {
        // What sudo runs, runs as root: `sudo -n /usr/local/sbin/prepare`.
        let skip = sudo_options(args);
        if let Some(rest) = args.get(skip..).filter(|r| !r.is_empty()) {
            out.extend(read_command(rest));
        }
    } else if out.iter().any(|f| matches!(f, Finding::StepDown { .. })) {
        // What the stepped-down command runs: `gosu app nginx`, `su-exec app ping`.
        let skip = match prog {
            "gosu" | "su-exec" | "s6-setuidgid" => 1,
            _ => args.iter().take_while(|a| a.starts_with('-')).count(),
        };
        if let Some(rest) = args.get(skip..).filter(|r| !r.is_empty())
            && prog != "su"
        {
            out.extend(
                read_command(rest).into_iter().filter(|f| {
                    matches!(f, Finding::Ping | Finding::Sudo | Finding::Daemon { .. })
                }),
            );
        }
    }
    out
}

/// The value of `--opt value` or `--opt=value` (or `-uvalue` for short options).
fn option_value<'a>(args: &'a [String], opt: &str) -> Option<&'a str> {
    for (i, a) in args.iter().enumerate() {
        if a == opt {
            return args.get(i + 1).map(String::as_str);
        }
        if let Some(v) = a.strip_prefix(opt).filter(|v| !v.is_empty()) {
            return Some(v.strip_prefix('=').unwrap_or(v));
        }
    }
    None
}

/// How many words of sudo's arguments are its own options (`-n`, `-u USER`, `-E`).
fn sudo_options(args: &[String]) -> usize {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if a == "--" {
            return i + 1;
        }
        if !a.starts_with('-') {
            break;
        }
        i += if ["-u", "-g", "-C", "-h", "-p", "-U", "-r", "-t"].contains(&a.as_str()) {
            2
        } else {
            1
        };
    }
    i
}

/// The user of `su [-] [-s SHELL] [-c CMD] USER`.
fn su_user(args: &[String]) -> Option<&str> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if ["-c", "-s", "-g", "-G", "--command", "--shell", "--group"].contains(&a.as_str()) {
            it.next();
        } else if !a.starts_with('-') {
            return Some(a);
        }
    }
    None
}

fn is_recursive(arg: &str) -> bool {
    arg == "--recursive" || (!arg.starts_with("--") && arg.starts_with('-') && arg.contains('R'))
}

/// `u+s`, `+s`, `4755`, `6755`: a setuid file. A setgid bit alone (`g+s`, `2775`) is
/// most often a directory's group inheritance, not a helper that gains privileges.
fn sets_id_bit(mode: &str) -> bool {
    if mode.len() == 4 && mode.bytes().all(|b| b.is_ascii_digit()) {
        return matches!(mode.as_bytes()[0], b'4' | b'6');
    }
    mode.split(',').any(|part| {
        part.split_once(['+', '=']).is_some_and(|(who, what)| {
            (who.is_empty() || who.contains(['u', 'a'])) && what.contains('s')
        })
    })
}

/// Capability names in a `setcap` text (`cap_net_bind_service,cap_net_raw+ep`), as
/// `NET_BIND_SERVICE`.
pub fn cap_names(text: &str) -> Vec<String> {
    let mut caps: Vec<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter_map(|w| {
            let w = w.to_ascii_uppercase();
            w.strip_prefix("CAP_").map(str::to_string)
        })
        .collect();
    caps.sort();
    caps.dedup();
    caps
}

#[cfg(test)]
mod tests;

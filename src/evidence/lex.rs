//! A small shell reader: one line into its simple commands (`a && b; c | d $(e)`), each
//! as unquoted words with leading prefixes (`exec`, `env`, `VAR=x`, `if`, `then` …) removed.
//! It does not expand anything; it only needs to see which programs run with which words.

/// The simple commands of one logical line.
pub fn commands(line: &str) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    let end_word = |word: &mut String, in_word: &mut bool, cur: &mut Vec<String>| {
        if *in_word {
            cur.push(std::mem::take(word));
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => word.extend(chars.next()),
                        _ => word.push(q),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.extend(chars.next());
            }
            '#' if !in_word => break,
            '$' if chars.peek() == Some(&'(') => {
                chars.next();
                end_word(&mut word, &mut in_word, &mut cur);
                out.push(std::mem::take(&mut cur));
            }
            ';' | '|' | '&' | '(' | ')' | '`' | '{' | '}' => {
                end_word(&mut word, &mut in_word, &mut cur);
                out.push(std::mem::take(&mut cur));
            }
            c if c.is_whitespace() => end_word(&mut word, &mut in_word, &mut cur),
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    end_word(&mut word, &mut in_word, &mut cur);
    out.push(cur);
    out.into_iter()
        .map(strip_prefixes)
        .filter(|c| !c.is_empty())
        .collect()
}

const PREFIXES: &[&str] = &[
    "exec", "command", "nohup", "time", "if", "then", "else", "elif", "do", "while", "until", "!",
    "builtin", "eval",
];

fn strip_prefixes(words: Vec<String>) -> Vec<String> {
    let mut i = 0;
    while let Some(w) = words.get(i) {
        let assignment = w.split_once('=').is_some_and(|(k, _)| {
            !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_')
        });
        if PREFIXES.contains(&w.as_str()) || assignment {
            i += 1;
        } else if w == "env" || w.ends_with("/env") {
            i += 1;
            while words
                .get(i)
                .is_some_and(|a| a.starts_with('-') || a.contains('='))
            {
                i += 1;
            }
        } else {
            break;
        }
    }
    words.into_iter().skip(i).collect()
}

#[cfg(test)]
mod tests {
    use super::commands;

    fn words(line: &str) -> Vec<String> {
        commands(line).into_iter().map(|c| c.join(" ")).collect()
    }

    #[test]
    fn splits_commands_and_removes_prefixes() {
        assert_eq!(
            words("set -e; if [ -x x ]; then exec gosu app \"$@\"; fi"),
            ["set -e", "[ -x x ]", "gosu app $@", "fi"]
        );
        assert_eq!(
            words("FOO=1 env -i A=b chown -R 'app user' /data && x"),
            ["chown -R app user /data", "x"]
        );
        assert_eq!(words("v=$(id -u) # gosu"), ["id -u"]);
        assert_eq!(words("echo a\\ b | tee"), ["echo a b", "tee"]);
    }
}

//! Quoting for the two languages a Containerfile mixes: its own
//! instruction arguments (ENV, LABEL, COPY) and the shell of RUN.

use super::accept::has_control;

/// A shell word: as written when it is plain (paths, `${VAR}` references),
/// else double-quoted so spaces and globs stay literal while `$VAR` still
/// expands (ov's tasks rely on `${VAR}` in paths).
pub(super) fn sh_word(s: &str) -> String {
    let quoted = sh_dq(s);
    let plain = !s.is_empty()
        && quoted.len() == s.len() + 2
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-~${}".contains(c));
    if plain {
        return s.to_string();
    }
    quoted
}

/// `"…"` for the shell. Only plain parameter expansions (`$VAR`,
/// `${VAR}`) stay live: every other `$` (`$(…)`, `${x:-…}`, `$1`) is
/// escaped, as are backticks, so no value runs a command.
pub(super) fn sh_dq(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for (i, c) in s.char_indices() {
        let escape = match c {
            '"' | '\\' | '`' => true,
            '$' => !plain_expansion(&s[i + 1..]),
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Whether the text after a `$` is a variable name or `{name}`.
pub(super) fn plain_expansion(after: &str) -> bool {
    let ident_start = |c: char| c.is_ascii_alphabetic() || c == '_';
    let ident = |s: &str| {
        s.starts_with(ident_start) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    match after.strip_prefix('{') {
        Some(rest) => rest.find('}').is_some_and(|end| ident(&rest[..end])),
        None => after.starts_with(ident_start),
    }
}

/// Comment text on one line: control characters are shown escaped so a
/// name cannot end the comment and start an instruction.
pub(super) fn comment_text(s: &str) -> String {
    if has_control(s) {
        s.escape_debug().to_string()
    } else {
        s.to_string()
    }
}

/// `'…'` for the shell: nothing inside expands.
pub(crate) fn sh_sq(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A double-quoted ENV value. `$` is left alone: ENV values may refer to
/// earlier variables (`${PATH}`). `None` when the value has a newline,
/// which an ENV instruction cannot hold.
pub(super) fn env_value(s: &str) -> Option<String> {
    if has_control(s) {
        return None;
    }
    Some(format!(
        "\"{}\"",
        s.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// A double-quoted LABEL value: `$` is escaped too, so label text (shell
/// commands inside eval checks) is never expanded by the builder. Control
/// characters, which no instruction line can hold, are written as their
/// escapes (`\n`).
pub(super) fn label_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' | '$' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() && c != '\t' => out.extend(c.escape_debug()),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A LABEL key: as written when it is a plain dotted name, else quoted
/// like a value.
pub(super) fn label_key(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c));
    if plain {
        s.to_string()
    } else {
        label_value(s)
    }
}

/// A COPY argument for the builder's own word lexer, which reads quotes,
/// backslashes and `$` in COPY arguments (JSON form included): those are
/// escaped, except plain `$VAR`/`${VAR}` references when `expand` holds,
/// which the builder then expands as ov's tasks expect.
fn builder_word(s: &str, expand: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.char_indices() {
        let escape = match c {
            '\'' | '"' | '\\' => true,
            '$' => !(expand && plain_expansion(&s[i + 1..])),
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// COPY's source and destination: plain when they have no whitespace, else
/// the JSON form, the only one that allows spaces; either way escaped for
/// the builder's lexer ([`builder_word`]). The source is a file in the
/// build context that ov checked by its literal name, so nothing in it
/// expands (glob characters are refused when the project loads); the
/// destination keeps `${VAR}` live.
pub(super) fn copy_args(flags: &[String], src: &str, dest: &str) -> String {
    let mut out = String::from("COPY");
    for f in flags {
        out.push(' ');
        out.push_str(f);
    }
    let (src, dest) = (&builder_word(src, false), &builder_word(dest, true));
    // A line ending in `\` would continue into the next instruction, so a
    // trailing backslash also takes the JSON form (its line ends in `]`).
    if src.chars().chain(dest.chars()).any(char::is_whitespace) || dest.ends_with('\\') {
        // Serialising a string cannot fail.
        let js = |s: &str| serde_json::to_string(s).unwrap_or_default();
        out.push_str(&format!(" [{}, {}]", js(src), js(dest)));
    } else {
        out.push(' ');
        out.push_str(src);
        out.push(' ');
        out.push_str(dest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A destination ending in `\` must not continue the COPY line into
    /// the next instruction.
    #[test]
    fn copy_never_ends_a_line_in_a_backslash() {
        let c = copy_args(&[], "a", "/etc/x\\");
        assert!(c.ends_with(']'), "{c}");
        assert_eq!(
            super::super::split_instructions(&format!("{c}\nRUN true")).len(),
            2
        );
    }

    #[test]
    fn words() {
        assert_eq!(sh_word("/etc/foo-1.2"), "/etc/foo-1.2");
        assert_eq!(sh_word("${HOME}/.config"), "${HOME}/.config");
        assert_eq!(sh_word("/a b"), "\"/a b\"");
        assert_eq!(sh_word("/x/*"), "\"/x/*\"");
        assert_eq!(sh_word(""), "\"\"");
        assert_eq!(sh_dq("a\"b`c"), "\"a\\\"b\\`c\"");
        assert_eq!(sh_sq("it's"), "'it'\\''s'");
        assert_eq!(sh_word("/a/$(id)"), "\"/a/\\$(id)\"");
        assert_eq!(sh_word("${HOME}/x y"), "\"${HOME}/x y\"");
        assert_eq!(sh_word("${A:-x}"), "\"\\${A:-x}\"");
        assert_eq!(sh_dq("$1 $A $_b ${C} $"), "\"\\$1 $A $_b ${C} \\$\"");
    }

    #[test]
    fn instruction_values() {
        assert_eq!(env_value("a \"b\" \\").unwrap(), "\"a \\\"b\\\" \\\\\"");
        assert_eq!(env_value("a\nb"), None);
        assert_eq!(env_value("a\0b"), None);
        assert_eq!(label_value("a\nb\rc"), "\"a\\nb\\rc\"");
        assert_eq!(label_key("org.x/y-z"), "org.x/y-z");
        assert_eq!(label_key("a b\nc"), "\"a b\\nc\"");
        assert_eq!(label_value("$(id -u)"), "\"\\$(id -u)\"");
        assert_eq!(copy_args(&[], "a b", "/x"), "COPY [\"a b\", \"/x\"]");
        assert_eq!(
            copy_args(&["--chmod=0644".into()], "a", "/x"),
            "COPY --chmod=0644 a /x"
        );
        assert_eq!(
            copy_args(&[], "a", "/q'\"x\\$(id)${HOME}"),
            "COPY a /q\\'\\\"x\\\\\\$(id)${HOME}"
        );
        // Sources are literal file names: nothing expands.
        assert_eq!(
            copy_args(&[], "p$tag${X}.txt", "${HOME}/x"),
            r"COPY p\$tag\${X}.txt ${HOME}/x"
        );
    }
}

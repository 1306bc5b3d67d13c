//! Quoting for the two languages a Containerfile mixes: its own
//! instruction arguments (ENV, LABEL, COPY) and the shell of RUN.

/// A shell word: as written when it is plain (paths, `${VAR}` references),
/// else double-quoted so spaces and globs stay literal while `$VAR` still
/// expands (ov's tasks rely on `${VAR}` in paths).
pub(super) fn sh_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-~${}".contains(c));
    if plain {
        return s.to_string();
    }
    sh_dq(s)
}

/// `"…"` for the shell, keeping `$` expansions.
pub(super) fn sh_dq(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if matches!(c, '"' | '\\' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `'…'` for the shell: nothing inside expands.
pub(crate) fn sh_sq(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A double-quoted ENV value. `$` is left alone: ENV values may refer to
/// earlier variables (`${PATH}`). `None` when the value has a newline,
/// which an ENV instruction cannot hold.
pub(super) fn env_value(s: &str) -> Option<String> {
    if s.contains('\n') || s.contains('\r') {
        return None;
    }
    Some(format!(
        "\"{}\"",
        s.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// A double-quoted LABEL value: `$` is escaped too, so label text (shell
/// commands inside eval checks) is never expanded by the builder.
pub(super) fn label_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// COPY's source and destination: plain when they have no whitespace, else
/// the JSON form, the only one that allows spaces.
pub(super) fn copy_args(flags: &[String], src: &str, dest: &str) -> String {
    let mut out = String::from("COPY");
    for f in flags {
        out.push(' ');
        out.push_str(f);
    }
    if src.chars().chain(dest.chars()).any(char::is_whitespace) {
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

    #[test]
    fn words() {
        assert_eq!(sh_word("/etc/foo-1.2"), "/etc/foo-1.2");
        assert_eq!(sh_word("${HOME}/.config"), "${HOME}/.config");
        assert_eq!(sh_word("/a b"), "\"/a b\"");
        assert_eq!(sh_word("/x/*"), "\"/x/*\"");
        assert_eq!(sh_word(""), "\"\"");
        assert_eq!(sh_dq("a\"b`c"), "\"a\\\"b\\`c\"");
        assert_eq!(sh_sq("it's"), "'it'\\''s'");
    }

    #[test]
    fn instruction_values() {
        assert_eq!(env_value("a \"b\" \\").unwrap(), "\"a \\\"b\\\" \\\\\"");
        assert_eq!(env_value("a\nb"), None);
        assert_eq!(label_value("$(id -u)"), "\"\\$(id -u)\"");
        assert_eq!(copy_args(&[], "a b", "/x"), "COPY [\"a b\", \"/x\"]");
        assert_eq!(
            copy_args(&["--chmod=0644".into()], "a", "/x"),
            "COPY --chmod=0644 a /x"
        );
    }
}

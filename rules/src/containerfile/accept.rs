//! Which project strings each Containerfile context can hold. The renderer
//! refuses the others, and the loader checks the same predicates first so
//! the author sees file:line:col instead of a render error at build time.

/// Whether `s` holds a character no single-line context can carry: a
/// line break, NUL or another control character (tab excepted).
pub fn has_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control() && c != '\t')
}

/// A variable name as ENV, `export` and the shell accept it.
pub fn is_var_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A package name as install templates put it on their command line,
/// unquoted: one word of characters the shell gives no meaning (`*` is
/// kept for `dnf install 'foo-*'`-style globs).
pub fn is_package_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-:~@/=,*".contains(c))
}

/// A value a template puts into its shell (repo URLs, options, keys):
/// one line with no character that ends a quote or starts a command, and
/// `$` only as a plain `$VAR`/`${VAR}` reference (dnf's `$releasever`).
/// Spaces are kept (`components: main contrib`).
pub fn is_template_value(s: &str) -> bool {
    !has_control(s)
        && s.char_indices().all(|(i, c)| match c {
            '\'' | '"' | '`' | '\\' | ';' | '&' | '|' | '<' | '>' | '(' | ')' => false,
            '$' => super::quote::plain_expansion(&s[i + 1..]),
            _ => true,
        })
}

/// A Containerfile stage name (`FROM … AS <name>`, `--mount=…,from=<name>`)
/// as buildah and BuildKit take it: lower case, starting with a letter.
/// Layers that trigger a builder name a stage after themselves.
pub fn is_stage_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

/// A task's `user:` as `USER` and `COPY --chown` take it: a name or id,
/// optionally `:group`, with `${USER}`-style references (ov substitutes
/// the image user's).
pub fn is_user_spec(s: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-${}".contains(c))
    };
    match s.split_once(':') {
        Some((u, g)) => part(u) && part(g),
        None => part(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates() {
        assert!(is_var_name("_A1") && !is_var_name("1A") && !is_var_name("A-B"));
        assert!(!is_var_name("X=1\nRUN echo"));
        assert!(is_package_name("libfoo2:amd64=1.2~rc1+b1") && !is_package_name("a;b"));
        assert!(!is_package_name("a b") && !is_package_name(""));
        assert!(is_user_spec("${USER}") && is_user_spec("1000:1000") && is_user_spec("nobody"));
        assert!(!is_user_spec("root\nRUN x") && !is_user_spec("a b") && !is_user_spec(":"));
        assert!(is_template_value("https://x/$releasever/${basearch} main"));
        for bad in ["a\"b", "a'b", "$(id)", "a;b", "a&b", "`id`", "a\\b", "x\ny"] {
            assert!(!is_template_value(bad), "{bad}");
        }
        assert!(has_control("a\rb") && has_control("\0") && !has_control("a\tb é"));
    }
}

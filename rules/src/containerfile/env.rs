//! Layer `env:` and `path_append:` values as ov writes them into ENV
//! (`env.go`'s `ExpandPath`, `generate.go`'s `escapeContainerfileEnvValue`).

use super::accept::has_control;

/// `~` and `$HOME` in a value, made the image user's home as ov's
/// `ExpandPath` does: a leading `~/` (or the whole value `~`), then every
/// `$HOME` anywhere, as plain text. So `${HOME}` and `~user` stay as
/// written, and `$HOMEBREW` becomes `<home>BREW` (ov's quirk, kept so an
/// image means the same under both tools).
pub fn expand_home(value: &str, home: &str) -> String {
    let value = match value.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("{home}{rest}"),
        _ => value.to_string(),
    };
    value.replace("$HOME", home)
}

/// An `env:` value as an ENV argument: double-quoted, with every `$`
/// escaped except in `${PATH}`, as ov writes it: the builder then leaves
/// `${POSTGRES_PASSWORD}`-style references for the running container's
/// shell instead of emptying them at build time. `None` when the value
/// has a line break, which no ENV can hold.
pub fn env_literal(value: &str) -> Option<String> {
    if has_control(value) {
        return None;
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    let mut rest = value;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("${PATH}") {
            out.push_str("${PATH}");
            rest = &rest["${PATH}".len()..];
            continue;
        }
        if matches!(c, '"' | '\\' | '$') {
            out.push('\\');
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out.push('"');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_forms_ov_expands() {
        let h = "/home/user";
        assert_eq!(expand_home("~/.npm-global", h), "/home/user/.npm-global");
        assert_eq!(expand_home("~", h), "/home/user");
        assert_eq!(expand_home("$HOME/.cargo/bin", h), "/home/user/.cargo/bin");
        assert_eq!(
            expand_home("/opt:$HOME/bin:$HOME/x", h),
            "/opt:/home/user/bin:/home/user/x"
        );
        // What ov leaves alone.
        assert_eq!(expand_home("${HOME}/x", h), "${HOME}/x");
        assert_eq!(expand_home("~other/x", h), "~other/x");
        assert_eq!(expand_home("/a:~/b", h), "/a:~/b");
        assert_eq!(expand_home("~~", h), "~~");
        // ov's plain-text replace.
        assert_eq!(expand_home("$HOMEBREW", h), "/home/userBREW");
    }

    #[test]
    fn env_values_keep_their_dollars_for_run_time() {
        assert_eq!(env_literal("/home/user/x").unwrap(), "\"/home/user/x\"");
        assert_eq!(env_literal("${DB_PASS}").unwrap(), "\"\\${DB_PASS}\"");
        assert_eq!(env_literal("a:${PATH}").unwrap(), "\"a:${PATH}\"");
        assert_eq!(env_literal("$PATH").unwrap(), "\"\\$PATH\"");
        assert_eq!(
            env_literal("say \"hi\" \\o/").unwrap(),
            "\"say \\\"hi\\\" \\\\o/\""
        );
        assert_eq!(env_literal("a\nb"), None);
    }
}

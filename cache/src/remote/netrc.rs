//! Credentials from a netrc file (`machine HOST login USER password PASS`),
//! the file curl, git and Bazel's credential helpers read. Parsed here: the
//! netrc crate on crates.io has been unmaintained since 2016 and the format
//! is a dozen lines of tokens.

/// The login and password for `host` in netrc text: the first `machine`
/// entry naming it, else the `default` entry. `macdef` bodies (macros, up to
/// a blank line) are skipped.
pub fn lookup(text: &str, host: &str) -> Option<(String, String)> {
    let mut found: Option<(String, String)> = None;
    let mut default: Option<(String, String)> = None;
    // Which entry the tokens belong to: Some(true) the host's, Some(false)
    // another machine's, None the default entry.
    let mut current: Option<bool> = Some(false);
    let (mut login, mut password) = (String::new(), String::new());
    let mut close = |current: Option<bool>, login: &mut String, password: &mut String| {
        let entry = (std::mem::take(login), std::mem::take(password));
        match current {
            Some(true) if found.is_none() => found = Some(entry),
            None if default.is_none() => default = Some(entry),
            _ => {}
        }
    };
    let mut lines = text.lines();
    let mut tokens: Vec<String> = Vec::new();
    while let Some(line) = lines.next() {
        for w in line.split_whitespace() {
            if w == "macdef" {
                // The macro runs to the next blank line.
                for l in lines.by_ref() {
                    if l.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            if w.starts_with('#') && tokens.last().map(String::as_str) != Some("password") {
                break;
            }
            tokens.push(w.to_string());
        }
    }
    let mut it = tokens.into_iter();
    let mut started = false;
    while let Some(t) = it.next() {
        match t.as_str() {
            "machine" => {
                if started {
                    close(current, &mut login, &mut password);
                }
                started = true;
                current = Some(it.next().is_some_and(|h| h.eq_ignore_ascii_case(host)));
            }
            "default" => {
                if started {
                    close(current, &mut login, &mut password);
                }
                started = true;
                current = None;
            }
            "login" => login = it.next().unwrap_or_default(),
            "password" => password = it.next().unwrap_or_default(),
            "account" => {
                it.next();
            }
            _ => {}
        }
    }
    if started {
        close(current, &mut login, &mut password);
    }
    found
        .or(default)
        .filter(|(l, p)| !l.is_empty() || !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_host_then_the_default() {
        let text = "# a comment\nmachine other.example login o password op\n\
                    machine cache.example\n  login ci\n  password s3cr#t\n\
                    macdef init\ncd /\nmachine cache.example login fake\n\n\
                    default login anon password anonpw\n";
        assert_eq!(
            lookup(text, "cache.example"),
            Some(("ci".into(), "s3cr#t".into()))
        );
        assert_eq!(
            lookup(text, "CACHE.example"),
            Some(("ci".into(), "s3cr#t".into()))
        );
        assert_eq!(
            lookup(text, "elsewhere"),
            Some(("anon".into(), "anonpw".into()))
        );
        assert_eq!(lookup("machine a login x password y", "b"), None);
        assert_eq!(lookup("", "b"), None);
        assert_eq!(
            lookup("machine a account z login x password y", "a"),
            Some(("x".into(), "y".into()))
        );
    }
}

//! Hiding secrets in text meant for people and logs: the password of URL
//! userinfo (`tcp://user:pass@host`) and secret-looking query parameters
//! (`?token=…`). Errors embed URLs anywhere in their text, so this scans
//! free text rather than parsing one URL.
//!
//! With `user:password@`, the user stays (it says which account was used,
//! which is what someone debugging needs) and the password goes. With a
//! bare `name@` the whole userinfo goes: a lone userinfo is as often a
//! token (`https://<token>@host`) as a user name.

/// What replaces a secret.
pub const MASK: &str = "***";

/// Query parameter names whose values are secrets (compared without case).
const SECRET_PARAMS: &[&str] = &[
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "auth",
    "authorization",
    "password",
    "passwd",
    "pwd",
    "pass",
    "secret",
    "client_secret",
    "key",
    "api_key",
    "apikey",
    "access_key",
    "secret_key",
    "private_token",
    "signature",
    "sig",
    "credential",
    "credentials",
    "session",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
];

/// Characters that end a URL's authority or a parameter value in free
/// text: URL delimiters, whitespace and the quotes or brackets messages put
/// around URLs.
fn ends_token(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>' | '(' | ')' | '[' | ']')
}

/// `text` with every secret replaced by [`MASK`]. Text without secrets is
/// returned unchanged.
pub fn redact(text: &str) -> String {
    redact_params(&redact_userinfo(text))
}

/// Redacts every string inside `v` (keys stay: they are field names).
pub fn redact_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => *s = redact(s),
        serde_json::Value::Array(a) => a.iter_mut().for_each(redact_json),
        serde_json::Value::Object(o) => o.values_mut().for_each(redact_json),
        _ => {}
    }
}

/// Masks userinfo after each `://`: the password when there is a `:`,
/// else all of it.
fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| ends_token(c) || matches!(c, '/' | '?' | '#'))
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        // The last `@`: an unencoded `@` in a password belongs to it.
        match authority.rfind('@') {
            Some(at) => {
                let info = &authority[..at];
                match info.find(':') {
                    Some(colon) => {
                        out.push_str(&info[..=colon]);
                        out.push_str(MASK);
                    }
                    None => out.push_str(MASK),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Masks the value of each `name=value` that follows `?`, `&` or `;` when
/// `name` is in [`SECRET_PARAMS`].
fn redact_params(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(['?', '&', ';']) {
        let (head, tail) = rest.split_at(i + 1);
        out.push_str(head);
        let Some(eq) = tail.find('=') else {
            rest = tail;
            continue;
        };
        let name = &tail[..eq];
        let is_secret = !name.is_empty()
            && !name.contains(|c: char| ends_token(c) || matches!(c, '&' | '?' | ';' | '#'))
            && SECRET_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(name));
        if !is_secret {
            rest = tail;
            continue;
        }
        let value = &tail[eq + 1..];
        let end = value
            .find(|c: char| ends_token(c) || matches!(c, '&' | '#' | ';'))
            .unwrap_or(value.len());
        out.push_str(&tail[..=eq]);
        if end > 0 {
            out.push_str(MASK);
        }
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_keeps_the_user_and_hides_the_password() {
        assert_eq!(
            redact("cannot reach tcp://user:s3cret@127.0.0.1:1: refused"),
            "cannot reach tcp://user:***@127.0.0.1:1: refused"
        );
        assert_eq!(
            redact("https://ghp_abc123@github.com/o/r"),
            "https://***@github.com/o/r"
        );
        // An unencoded `@` in the password is still the password's.
        assert_eq!(
            redact("tcp://u:p@ss@host:2375/x"),
            "tcp://u:***@host:2375/x"
        );
        assert_eq!(
            redact("url \"http://a:b@h\" and 'ssh://c:d@e'"),
            "url \"http://a:***@h\" and 'ssh://c:***@e'"
        );
    }

    #[test]
    fn secret_query_parameters_are_masked() {
        assert_eq!(
            redact("GET http://h/p?token=s3cret&x=1 failed"),
            "GET http://h/p?token=***&x=1 failed"
        );
        assert_eq!(
            redact("http://h/p?a=1&X-Amz-Signature=abc#frag"),
            "http://h/p?a=1&X-Amz-Signature=***#frag"
        );
        assert_eq!(
            redact("unix:///run/p.sock?Access_Token=zzz"),
            "unix:///run/p.sock?Access_Token=***"
        );
        assert_eq!(redact("?token="), "?token=");
    }

    #[test]
    fn text_without_secrets_is_unchanged() {
        for s in [
            "",
            "plain text",
            "unix:///run/podman/podman.sock",
            "http://host/a?tag=1&page=2",
            "mail me@example.com",
            "a ?? b && c; key-value",
            "tokens=3 monkey=1",
            "http://host/p?monkey=1&tokenish=2",
            "ünïcödé://ä:ö@ü?sig=é",
        ] {
            let r = redact(s);
            if s.starts_with('ü') {
                assert_eq!(r, "ünïcödé://ä:***@ü?sig=***");
            } else {
                assert_eq!(r, s);
            }
        }
    }

    #[test]
    fn every_secret_in_a_long_message_goes() {
        let msg = "a tcp://u:PW1@h1 b tcp://PW2@h2/?key=PW3;sig=PW4 c http://h?password=PW5";
        let r = redact(msg);
        for pw in ["PW1", "PW2", "PW3", "PW4", "PW5"] {
            assert!(!r.contains(pw), "{pw} left in {r}");
        }
    }
}

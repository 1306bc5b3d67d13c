//! What a remote cache is and how to reach it: its URL, whether this build
//! may write to it, its credentials and its TLS roots. Credentials never sit
//! in the URL the client keeps, so no message that names the URL can show
//! them.

use super::sign::SigningKey;
use std::path::PathBuf;
use std::time::Duration;

/// What a build may do with the remote cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Look results up, never upload (untrusted builds: pull requests).
    Read,
    /// Look up and upload what this build ran (trusted builds).
    ReadWrite,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "read" => Ok(Mode::Read),
            "readwrite" => Ok(Mode::ReadWrite),
            other => Err(format!("`{other}` is not one of read, readwrite")),
        }
    }
}

/// Credentials for the server. Debug hides the secrets.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: Basic …`.
    Basic {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Bearer(_) => f.write_str("Bearer(***)"),
            Auth::Basic { user, .. } => write!(f, "Basic({user}:***)"),
        }
    }
}

/// A remote cache's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The base URL, without credentials, ending in `/`.
    pub url: reqwest::Url,
    /// Read, or read and write.
    pub mode: Mode,
    /// Credentials, if any.
    pub auth: Option<Auth>,
    /// A PEM file of extra CA certificates for https.
    pub ca_file: Option<PathBuf>,
    /// Sign uploads and take only signed entries.
    pub signing_key: Option<SigningKey>,
    /// How long to wait to connect, and for each read or write to make
    /// progress: a dead or stalled server costs at most this, once.
    pub timeout: Duration,
    /// Transfers at once.
    pub parallel: usize,
}

/// A remote cache URL that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("remote cache URL `{shown}`: {why}")]
pub struct UrlError {
    /// The URL with any password masked.
    shown: String,
    why: String,
}

/// The default for [`Config::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The default for [`Config::parallel`].
pub const DEFAULT_PARALLEL: usize = 8;

impl Config {
    /// Settings for the cache at `url` (http or https). Credentials come
    /// from, in order: the URL's userinfo, `token` (bearer), `basic`
    /// (user, password), then `netrc` (the text of a netrc file) for the
    /// URL's host. They are taken out of the URL.
    pub fn new(
        url: &str,
        mode: Mode,
        token: Option<String>,
        basic: Option<(String, String)>,
        netrc: Option<&str>,
    ) -> Result<Config, UrlError> {
        let bad = |why: &str| UrlError {
            shown: crate::redact(url),
            why: why.to_string(),
        };
        let mut parsed = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad("only http:// and https:// caches are supported"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(bad("a cache URL takes no query or fragment"));
        }
        let host = parsed.host_str().ok_or_else(|| bad("no host"))?.to_string();
        let from_url = (!parsed.username().is_empty()).then(|| Auth::Basic {
            user: percent_decode(parsed.username()),
            password: percent_decode(parsed.password().unwrap_or("")),
        });
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        if !parsed.path().ends_with('/') {
            let path = format!("{}/", parsed.path());
            parsed.set_path(&path);
        }
        let auth = from_url
            .or_else(|| token.filter(|t| !t.is_empty()).map(Auth::Bearer))
            .or_else(|| basic.map(|(user, password)| Auth::Basic { user, password }))
            .or_else(|| {
                super::netrc::lookup(netrc?, &host)
                    .map(|(user, password)| Auth::Basic { user, password })
            });
        Ok(Config {
            url: parsed,
            mode,
            auth,
            ca_file: None,
            signing_key: None,
            timeout: DEFAULT_TIMEOUT,
            parallel: DEFAULT_PARALLEL,
        })
    }
}

/// `%XX` escapes of URL userinfo decoded (bad escapes stay as written).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_url() {
        let c = Config::new(
            "http://ci:p%40ss@cache.example:8080/base",
            Mode::Read,
            None,
            None,
            None,
        )
        .unwrap();
        assert_eq!(c.url.as_str(), "http://cache.example:8080/base/");
        assert_eq!(
            c.auth,
            Some(Auth::Basic {
                user: "ci".into(),
                password: "p@ss".into()
            })
        );
        assert_eq!(format!("{:?}", c.auth), "Some(Basic(ci:***))");
    }

    #[test]
    fn token_then_basic_then_netrc() {
        let netrc = "machine cache.example login n password np";
        let c = |t: Option<&str>, b: Option<(&str, &str)>| {
            Config::new(
                "https://cache.example/",
                Mode::ReadWrite,
                t.map(String::from),
                b.map(|(u, p)| (u.to_string(), p.to_string())),
                Some(netrc),
            )
            .unwrap()
            .auth
        };
        assert_eq!(
            c(Some("tok"), Some(("u", "p"))),
            Some(Auth::Bearer("tok".into()))
        );
        assert_eq!(
            c(None, Some(("u", "p"))),
            Some(Auth::Basic {
                user: "u".into(),
                password: "p".into()
            })
        );
        assert_eq!(
            c(None, None),
            Some(Auth::Basic {
                user: "n".into(),
                password: "np".into()
            })
        );
        assert_eq!(format!("{:?}", Auth::Bearer("tok".into())), "Bearer(***)");
    }

    #[test]
    fn bad_urls_are_refused_without_showing_a_password() {
        for (url, why) in [
            ("ftp://h/", "only http"),
            ("http://h/?token=x", "no query"),
            ("not a url", "relative URL"),
        ] {
            let e = Config::new(url, Mode::Read, None, None, None)
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{e}");
        }
        let e = Config::new("ftp://u:hunter2@h/", Mode::Read, None, None, None)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }
}

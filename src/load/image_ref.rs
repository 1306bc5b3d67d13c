//! The grammar of an external image reference (the distribution
//! project's `reference` grammar): what an engine can pull or inspect.
//! A URL or a name with capitals passed validation and failed at build
//! time with an engine status code instead of the file's position.

/// `[domain/]path[:tag][@algo:hex]`, or `scratch`.
pub fn is_image_ref(s: &str) -> bool {
    if s == "scratch" {
        return true;
    }
    let (rest, digest) = match s.split_once('@') {
        Some((rest, d)) => (rest, Some(d)),
        None => (s, None),
    };
    if digest.is_some_and(|d| !is_digest(d)) {
        return false;
    }
    // A `:` after the last `/` starts the tag; one before it is a port.
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if tag.is_some_and(|t| !is_tag(t)) || name.len() > 255 {
        return false;
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    let first = parts[0];
    if parts.len() > 1
        && (first.contains(['.', ':'])
            || first == "localhost"
            || first.chars().any(|c| c.is_ascii_uppercase()))
    {
        if !is_domain(first) {
            return false;
        }
        parts.remove(0);
    }
    parts.iter().all(|p| is_path_component(p))
}

/// `host[:port]`: dot-separated labels of letters, digits and inner `-`.
fn is_domain(s: &str) -> bool {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    let label = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    host.split('.').all(label)
        && port.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// Lowercase letters and digits, joined by `.`, `_`, `__` or runs of `-`.
fn is_path_component(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !s.starts_with(alnum) || !s.ends_with(alnum) {
        return false;
    }
    s.split(alnum)
        .filter(|sep| !sep.is_empty())
        .all(|sep| matches!(sep, "." | "_" | "__") || sep.chars().all(|c| c == '-'))
}

/// Up to 128 word characters, `.` and `-`, not starting with either.
fn is_tag(s: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    s.len() <= 128 && s.starts_with(word) && s.chars().all(|c| word(c) || c == '.' || c == '-')
}

/// `algorithm:encoded`, as in `sha256:<64 hex>`.
fn is_digest(s: &str) -> bool {
    let Some((algo, encoded)) = s.split_once(':') else {
        return false;
    };
    let algo_ok = !algo.is_empty()
        && algo.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && algo
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+._-".contains(c));
    algo_ok
        && encoded.len() >= 32
        && encoded
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "=_-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::is_image_ref;

    #[test]
    fn references() {
        for ok in [
            "scratch",
            "fedora",
            "quay.io/fedora/fedora:43",
            "localhost/bookworm-minbase:1",
            "localhost:5000/a/b_c__d---e.f:v1.2-rc_3",
            "Registry.Example/x",
            "x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(is_image_ref(ok), "{ok}");
        }
        for bad in [
            "",
            "https://bob:pw@reg.example/x:1",
            "bob:pw@reg/x:1",
            "quay.io/Fedora:43",
            "reg/x:",
            "reg/x:-tag",
            "reg//x",
            "reg/x.",
            "reg/a___b",
            "x@sha256:short",
            "-x",
            "reg:port/x",
        ] {
            assert!(!is_image_ref(bad), "{bad}");
        }
    }
}

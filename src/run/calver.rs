//! ov's calendar-version tag: what `tag: auto` (the default) becomes.
//!
//! ov resolves `auto` to `ComputeCalVer()` of the build's start (its
//! `ov/version.go`: `fmt.Sprintf("%d.%d.%d", year, dayOfYear, hour*100 +
//! minute)` in UTC, no zero padding, e.g. `2026.141.1600`, `2026.5.830`),
//! one value for every image of the run (`ResolveAllImage(calverTag, …)`
//! in its `config.go`).
//!
//! The calver is a time, not content, so it never enters a node's key:
//! the image node's spec keeps the literal `auto`, and the run's calver
//! replaces it only when the user's tag is applied after the node (see
//! BUILD.md, "Tags").

use std::time::{SystemTime, UNIX_EPOCH};

/// The calver of `secs` seconds after the Unix epoch (UTC).
pub fn at(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let minute_of_day = (secs % 86_400) / 60;
    let (year, day_of_year) = year_and_day(days);
    let hhmm = (minute_of_day / 60) * 100 + minute_of_day % 60;
    format!("{year}.{day_of_year}.{hhmm}")
}

/// The calver of now.
pub fn now() -> String {
    at(SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0))
}

/// `<ref>:auto` with the calver in place of `auto`; any other tag as is.
pub fn resolve(tag: &str, calver: &str) -> String {
    match tag.strip_suffix(":auto") {
        Some(repo) => format!("{repo}:{calver}"),
        None => tag.to_string(),
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Year and 1-based day of year of `days` days after 1970-01-01.
fn year_and_day(mut days: i64) -> (i64, i64) {
    let mut year = 1970;
    loop {
        let len = if is_leap(year) { 366 } else { 365 };
        if days < len {
            return (year, days + 1);
        }
        days -= len;
        year += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ov_format_without_padding() {
        // 2026-05-21 16:00 UTC, ov's own schema stamp.
        assert_eq!(at(1_779_379_200), "2026.141.1600");
        // 2026-01-05 08:30 UTC: day 5, HHMM 830 (ov's comment: 08:30 -> 830).
        assert_eq!(at(1_767_601_800), "2026.5.830");
        // Midnight: HHMM 0.
        assert_eq!(at(1_767_225_600), "2026.1.0");
        // 2024-12-31 23:59 UTC, a leap year's last day.
        assert_eq!(at(1_735_689_540), "2024.366.2359");
    }

    #[test]
    fn only_auto_is_replaced() {
        assert_eq!(
            resolve("ghcr.io/o/web:auto", "2026.141.1600"),
            "ghcr.io/o/web:2026.141.1600"
        );
        assert_eq!(
            resolve("localhost:5000/web:auto", "1.2.3"),
            "localhost:5000/web:1.2.3"
        );
        assert_eq!(resolve("web:1", "2026.141.1600"), "web:1");
        assert_eq!(resolve("web:autox", "2026.141.1600"), "web:autox");
    }
}

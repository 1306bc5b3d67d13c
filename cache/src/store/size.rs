//! Byte sizes as people write them (`ov cache gc --max-size 10G`) and read
//! them (reports).

/// A size string [`parse_size`] does not understand.
#[derive(Debug, thiserror::Error)]
#[error(
    "not a size: {0:?} (want a number and an optional unit: 1024, 500M, 1.5GiB, 10GB; \
     K/M/G/T and KiB/MiB/GiB/TiB are powers of 1024, KB/MB/GB/TB powers of 1000)"
)]
pub struct SizeParseError(String);

/// Parses a byte size: a whole or decimal number and an optional unit,
/// case-insensitive, spaces allowed between them. `K`, `M`, `G`, `T` and
/// `KiB` … `TiB` are binary (10G = 10 × 2³⁰, as `du` and `docker` read it);
/// `KB` … `TB` are decimal; `B` or nothing means bytes. A fraction of a byte
/// is dropped.
///
/// ```
/// use ov_cache::parse_size;
/// assert_eq!(parse_size("10G").unwrap(), 10 << 30);
/// assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
/// assert_eq!(parse_size("500MB").unwrap(), 500_000_000);
/// assert!(parse_size("ten").is_err());
/// ```
pub fn parse_size(s: &str) -> Result<u64, SizeParseError> {
    let err = || SizeParseError(s.to_string());
    let t = s.trim();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = (&t[..num_end], t[num_end..].trim());
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(err()),
    };
    let (whole, frac) = match num.split_once('.') {
        Some((w, f)) => (w, f),
        None => (num, ""),
    };
    let digits_ok = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || !digits_ok(whole)
        || !digits_ok(frac)
        || (num.contains('.') && frac.is_empty())
    {
        return Err(err());
    }
    // Exact integer arithmetic: "1.1G" is not at the mercy of f64.
    let whole: u128 = whole.parse().map_err(|_| err())?;
    let frac_digits = frac.len().min(30) as u32;
    let frac_val: u128 = if frac_digits == 0 {
        0
    } else {
        frac[..frac_digits as usize].parse().map_err(|_| err())?
    };
    let m = u128::from(multiplier);
    let bytes = whole
        .checked_mul(m)
        .and_then(|w| w.checked_add(frac_val.checked_mul(m)? / 10u128.pow(frac_digits)))
        .ok_or_else(err)?;
    u64::try_from(bytes).map_err(|_| err())
}

/// A byte count for people: `512 B`, `1.5 KiB`, `10.0 GiB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        let cases: &[(&str, u64)] = &[
            ("1024", 1024),
            ("0", 0),
            ("10G", 10 << 30),
            ("10g", 10 << 30),
            ("500M", 500 << 20),
            ("1.5GiB", 1_610_612_736),
            ("1.5 GiB", 1_610_612_736),
            (" 2k ", 2048),
            ("10GB", 10_000_000_000),
            ("1.1G", 1_181_116_006),
            ("3B", 3),
            ("1T", 1 << 40),
            ("0.5K", 512),
            ("18446744073709551615", u64::MAX),
        ];
        for (s, want) in cases {
            assert_eq!(parse_size(s).unwrap(), *want, "{s:?}");
        }
    }

    #[test]
    fn refuses_the_rest() {
        for s in [
            "",
            "G",
            "ten",
            "-1G",
            "1.G",
            ".5G",
            "1..5G",
            "1.5.2G",
            "10 X",
            "1e9",
            "99999999T",
            "18446744073709551616",
        ] {
            assert!(parse_size(s).is_err(), "{s:?} parsed");
        }
        assert!(parse_size("10X").unwrap_err().to_string().contains("10X"));
    }

    #[test]
    fn formats_for_people() {
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(10 << 30), "10.0 GiB");
    }
}

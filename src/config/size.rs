//! Human-readable quantities in profiles: byte sizes (`16MiB`), byte rates (`50MiB/s`) and
//! durations (`60s`).
//!
//! Owns the text grammar and its formatting back to text for `describe()`. Does not own any
//! limits (those are cross-field rules in `transfer.rs`).

/// Parses a byte size.
///
/// Accepted: a plain byte count (`4096`); a number with a binary unit `K`, `Ki`, `KiB`, `M`,
/// `Mi`, `MiB`, `G`, `Gi`, `GiB`, `T`, `Ti`, `TiB` (1024-based; the single letters are
/// binary too, as in most storage tools); or a decimal unit `KB`, `MB`, `GB`, `TB`
/// (1000-based); `B` means bytes. Units are case-insensitive, a space may separate number and
/// unit, and the number may have a fraction (`1.5GiB`) as long as the result is a whole number
/// of bytes.
///
/// # Errors
/// A message (without the input) saying what is wrong: empty, unknown unit, fraction of a
/// byte, negative, or too large for 64 bits.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err("empty size".into());
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(if text.starts_with('-') {
            "a size cannot be negative".into()
        } else {
            "a size starts with a number".into()
        });
    }
    let multiplier: u128 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "ki" | "kib" => 1 << 10,
        "m" | "mi" | "mib" => 1 << 20,
        "g" | "gi" | "gib" => 1 << 30,
        "t" | "ti" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => {
            return Err(format!(
                "unknown unit `{other}` (use B, KiB, MiB, GiB, TiB, or KB, MB, GB, TB)"
            ));
        }
    };
    let (int_part, frac_part) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if frac_part.contains('.') || (int_part.is_empty() && frac_part.is_empty()) {
        return Err("malformed number".into());
    }
    if int_part.len() + frac_part.len() > 30 {
        return Err("too large".into());
    }
    let int_value: u128 = if int_part.is_empty() {
        0
    } else {
        int_part
            .parse()
            .map_err(|_| "malformed number".to_string())?
    };
    // 30 digits times a unit can exceed even u128: checked, so that a huge size is an error
    // rather than an overflow.
    let too_large = || "too large".to_string();
    let mut total = int_value.checked_mul(multiplier).ok_or_else(too_large)?;
    if !frac_part.is_empty() {
        let frac_value: u128 = frac_part
            .parse()
            .map_err(|_| "malformed number".to_string())?;
        let scale = 10u128.pow(frac_part.len() as u32);
        let scaled = frac_value.checked_mul(multiplier).ok_or_else(too_large)?;
        if !scaled.is_multiple_of(scale) {
            return Err("not a whole number of bytes".into());
        }
        total = total.checked_add(scaled / scale).ok_or_else(too_large)?;
    }
    u64::try_from(total).map_err(|_| "too large".to_string())
}

/// Parses a byte rate such as `50MiB/s` or `50MiB` (the `/s` is optional).
///
/// `off`, `none`, `unlimited`, `false`, the empty string and any zero rate mean "no limit" and give
/// `Ok(None)`.
///
/// # Errors
/// As [`parse_size`].
pub fn parse_rate(s: &str) -> Result<Option<u64>, String> {
    let text = s.trim();
    if text.is_empty()
        || ["off", "none", "unlimited", "false"]
            .iter()
            .any(|w| text.eq_ignore_ascii_case(w))
    {
        return Ok(None);
    }
    let lower = text.to_ascii_lowercase();
    let size = lower.strip_suffix("/s").unwrap_or(&lower);
    let bytes = parse_size(size)?;
    Ok(if bytes == 0 { None } else { Some(bytes) })
}

/// Parses a duration in whole seconds: `60`, `60s`, `2m`, `1h` (units case-insensitive).
///
/// # Errors
/// A message when the unit is unknown or the number is not a non-negative integer.
pub fn parse_secs(s: &str) -> Result<u64, String> {
    let text = s.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| "expected whole seconds such as `60` or `60s`".to_string())?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "s" | "sec" | "secs" => 1,
        "m" | "min" | "mins" => 60,
        "h" | "hour" | "hours" => 3600,
        other => return Err(format!("unknown unit `{other}` (use s, m or h)")),
    };
    n.checked_mul(factor).ok_or_else(|| "too large".to_string())
}

/// Formats a byte count the way a profile would write it: `16MiB` when it is a whole number of
/// a binary unit, else plain bytes.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ];
    for (factor, unit) in UNITS {
        if bytes >= factor && bytes.is_multiple_of(factor) {
            return format!("{}{unit}", bytes / factor);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn size_table() {
        let ok: &[(&str, u64)] = &[
            ("16MiB", 16 * MIB),
            ("16 MiB", 16 * MIB),
            ("16M", 16 * MIB),
            ("16mi", 16 * MIB),
            ("1GiB", 1 << 30),
            ("1.5GiB", 3 << 29),
            ("4096", 4096),
            ("64KiB", 64 << 10),
            ("64k", 64 << 10),
            ("10MB", 10_000_000),
            ("2gb", 2_000_000_000),
            ("7B", 7),
            (".5KiB", 512),
            ("0", 0),
            ("  8 MiB ", 8 * MIB),
            ("16384TiB", 16384 << 40),
        ];
        for (text, want) in ok {
            assert_eq!(parse_size(text), Ok(*want), "{text}");
        }
        for bad in [
            "",
            "MiB",
            "-1",
            "1.5",
            "1.2.3MiB",
            "12XB",
            "1 2",
            "99999999999999TiB",
            // Overflowed u128 once (a panic in debug builds).
            "999999999999999999999999999999TiB",
            "1.99999999999999999999999999999TiB",
            "abc",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn rate_table() {
        let ok: &[(&str, Option<u64>)] = &[
            ("50MiB/s", Some(50 * MIB)),
            ("50MiB", Some(50 * MIB)),
            ("50 mib/S", Some(50 * MIB)),
            ("1MB/s", Some(1_000_000)),
            ("4096", Some(4096)),
            ("off", None),
            ("OFF", None),
            ("unlimited", None),
            ("0", None),
            ("0MiB/s", None),
            ("", None),
        ];
        for (text, want) in ok {
            assert_eq!(parse_rate(text), Ok(*want), "{text}");
        }
        for bad in ["fast", "10XB/s", "-5MiB/s", "5MiB/h"] {
            assert!(parse_rate(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn secs_table() {
        assert_eq!(parse_secs("60"), Ok(60));
        assert_eq!(parse_secs("60s"), Ok(60));
        assert_eq!(parse_secs("2m"), Ok(120));
        assert_eq!(parse_secs("1H"), Ok(3600));
        for bad in ["", "s", "1.5s", "-1", "10ms", "ten"] {
            assert!(parse_secs(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn format_round_trips() {
        for bytes in [0, 1, 1000, 4096, 16 * MIB, 5 << 30, 3 << 29, 7 << 40] {
            assert_eq!(parse_size(&format_size(bytes)), Ok(bytes));
        }
        assert_eq!(format_size(16 * MIB), "16MiB");
        assert_eq!(format_size(1536 * MIB), "1536MiB");
        assert_eq!(format_size(1000), "1000");
    }
}

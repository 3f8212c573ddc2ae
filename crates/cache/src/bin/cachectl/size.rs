//! Byte sizes as people write them: `100`, `1KiB`, `4 KB`, `1MiB`.

/// Parses a size; KiB/MiB/GiB (and k/m/g) are powers of 1024, KB/MB/GB powers of 1000.
pub(crate) fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("`{text}` is not a size such as 100, 1KiB or 1MiB"))?;
    let unit_size: u64 = match unit.trim() {
        "" | "B" | "b" => 1,
        "k" | "K" | "KiB" | "kib" => 1 << 10,
        "KB" | "kB" | "kb" => 1_000,
        "m" | "M" | "MiB" | "mib" => 1 << 20,
        "MB" | "mb" => 1_000_000,
        "g" | "G" | "GiB" | "gib" => 1 << 30,
        "GB" | "gb" => 1_000_000_000,
        other => return Err(format!("unknown unit `{other}` (use B, KiB, MiB, GiB, KB, MB or GB)")),
    };
    number
        .checked_mul(unit_size)
        .and_then(|bytes| usize::try_from(bytes).ok())
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// `bytes` with a binary unit, for tables.
pub(crate) fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_both_unit_families() {
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("1KiB"), Ok(1024));
        assert_eq!(parse_size("4 KB"), Ok(4000));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert!(parse_size("1.5KiB").is_err());
        assert!(parse_size("KiB").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn sizes_format_with_one_decimal() {
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(3 << 20), "3.0 MiB");
    }
}

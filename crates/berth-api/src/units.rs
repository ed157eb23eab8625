//! Human-readable durations and sizes, exactly as `github.com/docker/go-units`
//! prints them (`HumanDuration`, `HumanSizeWithPrecision`, `BytesSize`), plus
//! its `RAMInBytes` parser for flags such as `--memory 512m`. Shared by the
//! daemon (`ps` status texts) and the client (tables).

const DECIMAL_UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY_UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// go-units `HumanDuration`: "Less than a second", "About a minute",
/// "3 hours", "2 weeks"… The argument is a duration in seconds.
pub fn human_duration(secs: f64) -> String {
    let seconds = secs as i64;
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = (secs / 60.0) as i64;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs / 3600.0 + 0.5) as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", (secs / 3600.0) as i64 / 24 / 365)
}

fn size_and_unit(mut size: f64, base: f64, units: &[&'static str]) -> (f64, &'static str) {
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    (size, units[i])
}

/// go-units `HumanSizeWithPrecision`: decimal units, `%.*g` digits
/// (`1984241` → `1.98MB` with precision 3).
pub fn human_size_with_precision(size: f64, precision: usize) -> String {
    let (s, unit) = size_and_unit(size, 1000.0, &DECIMAL_UNITS);
    format!("{}{unit}", go_format_g(s, precision))
}

/// go-units `HumanSize`: four significant digits.
pub fn human_size(size: f64) -> String {
    human_size_with_precision(size, 4)
}

/// go-units `BytesSize`: binary units, four significant digits ("15.54GiB").
pub fn bytes_size(size: f64) -> String {
    let (s, unit) = size_and_unit(size, 1024.0, &BINARY_UNITS);
    format!("{}{unit}", go_format_g(s, 4))
}

/// Go's `fmt.Sprintf("%.*g", precision, x)`: `precision` significant digits,
/// trailing zeros dropped, exponent form (`1e+03`) when the exponent is below
/// -4 or not below the precision.
pub fn go_format_g(x: f64, precision: usize) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if x == 0.0 {
        return "0".into();
    }
    let prec = precision.max(1);
    let neg = x < 0.0;
    // Rust rounds the exact binary value half-to-even, like Go's strconv.
    let e = format!("{:.*e}", prec - 1, x.abs());
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let nd = digits.len() as i32;
    let dp = exp + 1; // position of the decimal point within `digits`
    let mut eprec = prec as i32;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if exp < -4 || exp >= eprec {
        out.push_str(&digits[..1]);
        if nd > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    } else if dp <= 0 {
        out.push_str("0.");
        for _ in 0..(-dp) {
            out.push('0');
        }
        out.push_str(digits);
    } else if dp >= nd {
        out.push_str(digits);
        for _ in 0..(dp - nd) {
            out.push('0');
        }
    } else {
        out.push_str(&digits[..dp as usize]);
        out.push('.');
        out.push_str(&digits[dp as usize..]);
    }
    out
}

/// go-units `RAMInBytes`: "512m", "1g", "64KiB", "100" (binary multiples,
/// case-insensitive, the `b` optional). The error texts are go-units'.
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let (num, sfx) = match s.split_once(' ') {
        Some((n, sfx)) => (n, sfx),
        None => {
            let Some(sep) = s.rfind(|c: char| c.is_ascii_digit() || c == '.') else {
                return Err(format!("invalid size: '{s}'"));
            };
            (&s[..=sep], &s[sep + 1..])
        }
    };
    let size: f64 = num
        .parse()
        .map_err(|_| format!("strconv.ParseFloat: parsing \"{num}\": invalid syntax"))?;
    if size < 0.0 {
        return Err(format!("invalid size: '{s}'"));
    }
    if sfx.is_empty() {
        return Ok(size as i64);
    }
    let bad = || Err(format!("invalid suffix: '{sfx}'"));
    if sfx.len() > 3 {
        return bad();
    }
    let lower = sfx.to_ascii_lowercase();
    let b = lower.as_bytes();
    if b[0] == b'b' {
        return if b.len() > 1 { bad() } else { Ok(size as i64) };
    }
    let mul: f64 = match b[0] {
        b'k' => 1024.0,
        b'm' => 1024.0 * 1024.0,
        b'g' => 1024.0 * 1024.0 * 1024.0,
        b't' => 1024f64.powi(4),
        b'p' => 1024f64.powi(5),
        _ => return bad(),
    };
    if (b.len() == 2 && b[1] != b'b') || (b.len() == 3 && &lower[1..] != "ib") {
        return bad();
    }
    Ok((size * mul) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: f64 = 60.0;
    const HOUR: f64 = 3600.0;
    const DAY: f64 = 24.0 * HOUR;

    #[test]
    fn durations_from_go_units_examples() {
        let cases = [
            (0.45, "Less than a second"),
            (47.0, "47 seconds"),
            (MINUTE, "About a minute"),
            (3.0 * MINUTE, "3 minutes"),
            (35.0 * MINUTE, "35 minutes"),
            (35.0 * MINUTE + 40.0, "35 minutes"),
            (HOUR, "About an hour"),
            (HOUR + 45.0 * MINUTE, "2 hours"),
            (3.0 * HOUR, "3 hours"),
            (3.0 * HOUR + 59.0 * MINUTE, "4 hours"),
            (4.0 * HOUR, "4 hours"),
            (DAY, "24 hours"),
            (DAY + 12.0 * HOUR, "36 hours"),
            (2.0 * DAY, "2 days"),
            (7.0 * DAY, "7 days"),
            (13.0 * DAY + 5.0 * HOUR, "13 days"),
            (14.0 * DAY, "2 weeks"),
            (18.0 * DAY, "2 weeks"),
            (21.0 * DAY, "3 weeks"),
            (28.0 * DAY, "4 weeks"),
            (31.0 * DAY, "4 weeks"),
            (30.0 * DAY, "4 weeks"),
            (44.0 * DAY, "6 weeks"),
            (60.0 * DAY, "2 months"),
            (97.0 * DAY, "3 months"),
            (164.0 * DAY, "5 months"),
            (390.0 * DAY, "13 months"),
            (690.0 * DAY, "23 months"),
            (720.0 * DAY, "24 months"),
            (734.0 * DAY, "2 years"),
            (3.0 * 365.0 * DAY + 60.0 * DAY, "3 years"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(secs), want, "{secs}s");
        }
    }

    #[test]
    fn sizes_from_go_units_examples() {
        assert_eq!(human_size(1000.0), "1kB");
        assert_eq!(human_size(1024.0), "1.024kB");
        assert_eq!(human_size(1_000_000.0), "1MB");
        assert_eq!(human_size(1_048_576.0), "1.049MB");
        assert_eq!(human_size(2e6), "2MB");
        assert_eq!(human_size(3.42e9), "3.42GB");
        assert_eq!(human_size(5.372e12), "5.372TB");
        assert_eq!(human_size(2.22e15), "2.22PB");
        assert_eq!(human_size(1e28), "1e+04YB");
        assert_eq!(bytes_size(1024.0), "1KiB");
        assert_eq!(bytes_size(3.42 * 1024f64.powi(3)), "3.42GiB");
        assert_eq!(bytes_size(2.22 * 1024f64.powi(5)), "2.22PiB");
    }

    #[test]
    fn sizes_as_docker_images_prints_them() {
        assert_eq!(human_size_with_precision(1_984_241.0, 3), "1.98MB");
        assert_eq!(human_size_with_precision(4_260.0, 3), "4.26kB");
        assert_eq!(human_size_with_precision(0.0, 3), "0B");
        assert_eq!(human_size_with_precision(5.0, 3), "5B");
        assert_eq!(human_size_with_precision(100.0, 3), "100B");
        assert_eq!(human_size_with_precision(999_999.0, 3), "1e+03kB");
        assert_eq!(human_size_with_precision(77_800_000.0, 3), "77.8MB");
        assert_eq!(human_size_with_precision(1_500.0, 3), "1.5kB");
    }

    #[test]
    fn go_g_format() {
        assert_eq!(go_format_g(0.0001234, 3), "0.000123");
        assert_eq!(go_format_g(0.00001234, 3), "1.23e-05");
        assert_eq!(go_format_g(-12.5, 3), "-12.5");
        assert_eq!(go_format_g(123456.0, 3), "1.23e+05");
        assert_eq!(go_format_g(12.0, 3), "12");
    }

    #[test]
    fn ram_sizes() {
        assert_eq!(ram_in_bytes("32"), Ok(32));
        assert_eq!(ram_in_bytes("32b"), Ok(32));
        assert_eq!(ram_in_bytes("32k"), Ok(32 * 1024));
        assert_eq!(ram_in_bytes("32Kb"), Ok(32 * 1024));
        assert_eq!(ram_in_bytes("512m"), Ok(512 * 1024 * 1024));
        assert_eq!(ram_in_bytes("32MiB"), Ok(32 * 1024 * 1024));
        assert_eq!(ram_in_bytes("1.5g"), Ok(1536 * 1024 * 1024));
        assert_eq!(ram_in_bytes("32 mb"), Ok(32 * 1024 * 1024));
        assert_eq!(ram_in_bytes("32x"), Err("invalid suffix: 'x'".into()));
        assert_eq!(ram_in_bytes("32mm"), Err("invalid suffix: 'mm'".into()));
        assert!(ram_in_bytes("m").is_err());
        assert!(ram_in_bytes("-1").is_err());
    }
}

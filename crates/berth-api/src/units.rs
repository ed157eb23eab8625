//! Human-readable durations and sizes exactly as Docker prints them
//! (go-units `HumanDuration` and `HumanSizeWithPrecision`).

use std::time::Duration;

/// go-units HumanDuration: "Less than a second", "5 seconds", "About a
/// minute", "3 hours", "2 weeks"…
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    let s = secs as i64;
    if secs < 1.0 {
        return "Less than a second".into();
    }
    if s == 1 {
        return "1 second".into();
    }
    if s < 60 {
        return format!("{s} seconds");
    }
    let minutes = (secs / 60.0) as i64;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs / 3600.0).round() as i64;
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
    format!("{} years", hours / 24 / 365)
}

/// go-units HumanSizeWithPrecision(size, 3): decimal units, 3 significant
/// digits: "1.98MB", "4.1kB", "0B".
pub fn human_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut s = size;
    let mut i = 0;
    while s >= 1000.0 && i < UNITS.len() - 1 {
        s /= 1000.0;
        i += 1;
    }
    format!("{}{}", format_g3(s), UNITS[i])
}

/// Go's `%.3g`: three significant digits, trailing zeros removed.
fn format_g3(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits = v.abs().log10().floor() as i32 + 1;
    let decimals = (3 - digits).max(0) as usize;
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    // Rounding can carry into a fourth digit (999.5 → "1000"): Go prints "1e+03".
    if s.len() > 3 && !s.contains('.') && s.len() as i32 > 3 {
        return format!("{:.0}e+{:02}", v / 10f64.powi(digits - 1), digits - 1);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let d = |s: u64| human_duration(Duration::from_secs(s));
        assert_eq!(human_duration(Duration::from_millis(300)), "Less than a second");
        assert_eq!(d(1), "1 second");
        assert_eq!(d(47), "47 seconds");
        assert_eq!(d(60), "About a minute");
        assert_eq!(d(60 * 5), "5 minutes");
        assert_eq!(d(3600), "About an hour");
        assert_eq!(d(3600 * 5), "5 hours");
        assert_eq!(d(3600 * 24 * 3), "3 days");
        assert_eq!(d(3600 * 24 * 15), "2 weeks");
        assert_eq!(d(3600 * 24 * 90), "3 months");
        assert_eq!(d(3600 * 24 * 365 * 3), "3 years");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(1984241.0), "1.98MB");
        assert_eq!(human_size(4096.0), "4.1kB");
        assert_eq!(human_size(999.0), "999B");
        assert_eq!(human_size(1000.0), "1kB");
        assert_eq!(human_size(12_345_678_901.0), "12.3GB");
    }
}

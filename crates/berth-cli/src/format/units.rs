//! go-units formatting lives in berth-api (the daemon needs it too); the
//! client adds the "… ago" form its CREATED columns print.

pub(crate) use berth_api::units::{
    bytes_size, human_duration, human_size, human_size_with_precision, ram_in_bytes,
};

/// `HumanDuration(now - unix)` followed by " ago", as the CREATED columns
/// print it.
pub(crate) fn since(unix: i64) -> String {
    let now = chrono::Utc::now();
    let then = chrono::DateTime::from_timestamp(unix, 0).unwrap_or_default();
    let secs = (now - then).num_milliseconds() as f64 / 1000.0;
    format!("{} ago", human_duration(secs))
}

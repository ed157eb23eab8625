//! Output formatting shared by the commands: docker's table layout,
//! go-units sizes and durations, the Go template engine behind `--format`,
//! JSON re-indentation for `inspect`, and the progress display of the
//! daemon's JSON message streams.

pub(crate) mod json;
pub(crate) mod progress;
pub(crate) mod table;
pub(crate) mod template;
pub(crate) mod units;

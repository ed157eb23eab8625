//! The pure half of `stats`: the stats JSON the daemon sends, docker's
//! formulas (`calculateCPUPercentUnix`, memory without the inactive file
//! cache, block and network I/O sums), the table rows of its
//! `statsContext`, and the frame that redraws the screen in streaming mode.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use crate::format::table::{render, tabwrite, truncate_id};
use crate::format::template::{TemplateError, Value};
use crate::format::units::{bytes_size, human_size_with_precision};

/// docker's default `stats` table (Linux daemons).
pub(crate) const STATS_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/// `null` reads as the zero value, as Go's decoder leaves a field alone.
fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// One sample of `GET /containers/{id}/stats` (the fields the CLI reads).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub(crate) struct StatsResponse {
    #[serde(deserialize_with = "nullable")]
    pub(crate) name: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) id: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) pids_stats: PidsStats,
    #[serde(deserialize_with = "nullable")]
    pub(crate) blkio_stats: BlkioStats,
    #[serde(deserialize_with = "nullable")]
    pub(crate) cpu_stats: CpuStats,
    #[serde(deserialize_with = "nullable")]
    pub(crate) precpu_stats: CpuStats,
    #[serde(deserialize_with = "nullable")]
    pub(crate) memory_stats: MemoryStats,
    #[serde(deserialize_with = "nullable")]
    pub(crate) networks: BTreeMap<String, NetworkStats>,
}

/// `pids_stats`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub(crate) struct PidsStats {
    #[serde(deserialize_with = "nullable")]
    pub(crate) current: u64,
}

/// `blkio_stats` (cgroup v1 names; the daemon fills them on v2 too).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub(crate) struct BlkioStats {
    #[serde(deserialize_with = "nullable")]
    pub(crate) io_service_bytes_recursive: Vec<BlkioEntry>,
}

/// One `io_service_bytes_recursive` entry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub(crate) struct BlkioEntry {
    #[serde(deserialize_with = "nullable")]
    pub(crate) op: String,
    #[serde(deserialize_with = "nullable")]
    pub(crate) value: u64,
}

/// `cpu_stats` / `precpu_stats`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub(crate) struct CpuStats {
    #[serde(deserialize_with = "nullable")]
    pub(crate) cpu_usage: CpuUsage,
    #[serde(deserialize_with = "nullable")]
    pub(crate) system_cpu_usage: u64,
    #[serde(deserialize_with = "nullable")]
    pub(crate) online_cpus: u32,
}

/// `cpu_usage`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub(crate) struct CpuUsage {
    #[serde(deserialize_with = "nullable")]
    pub(crate) total_usage: u64,
    #[serde(deserialize_with = "nullable")]
    pub(crate) percpu_usage: Vec<u64>,
}

/// `memory_stats`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub(crate) struct MemoryStats {
    #[serde(deserialize_with = "nullable")]
    pub(crate) usage: u64,
    #[serde(deserialize_with = "nullable")]
    pub(crate) limit: u64,
    #[serde(deserialize_with = "nullable")]
    pub(crate) stats: CacheStats,
}

/// The entries of `memory_stats.stats` the CLI reads; the other thirty
/// or so are skipped without being stored.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub(crate) struct CacheStats {
    /// cgroup v1.
    pub(crate) total_inactive_file: Option<u64>,
    /// cgroup v2.
    pub(crate) inactive_file: Option<u64>,
}

/// One interface of `networks`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub(crate) struct NetworkStats {
    #[serde(deserialize_with = "nullable")]
    pub(crate) rx_bytes: u64,
    #[serde(deserialize_with = "nullable")]
    pub(crate) tx_bytes: u64,
}

/// docker's `StatsEntry`: one row's numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct StatsEntry {
    /// The name or short ID the CLI asked for.
    pub(crate) container: String,
    /// `name` of the sample (`/flow-e`).
    pub(crate) name: String,
    /// `id` of the sample.
    pub(crate) id: String,
    pub(crate) cpu_percentage: f64,
    pub(crate) memory: f64,
    pub(crate) memory_limit: f64,
    pub(crate) memory_percentage: f64,
    pub(crate) network_rx: f64,
    pub(crate) network_tx: f64,
    pub(crate) block_read: f64,
    pub(crate) block_write: f64,
    pub(crate) pids_current: u64,
    /// No valid sample (error, timeout, stream ended): `--` columns.
    pub(crate) is_invalid: bool,
}

impl StatsEntry {
    /// docker's `SetErrorAndReset`: numbers zeroed, row invalid.
    pub(crate) fn reset(&mut self) {
        *self = StatsEntry {
            container: std::mem::take(&mut self.container),
            name: std::mem::take(&mut self.name),
            id: std::mem::take(&mut self.id),
            is_invalid: true,
            ..StatsEntry::default()
        };
    }
}

/// docker's `calculateCPUPercentUnix`: the container's share of the host's
/// CPU time between the two readings, times the number of CPUs.
pub(crate) fn cpu_percent_unix(v: &StatsResponse) -> f64 {
    let cpu_delta =
        v.cpu_stats.cpu_usage.total_usage as f64 - v.precpu_stats.cpu_usage.total_usage as f64;
    let system_delta = v.cpu_stats.system_cpu_usage as f64 - v.precpu_stats.system_cpu_usage as f64;
    let mut online = f64::from(v.cpu_stats.online_cpus);
    if online == 0.0 {
        online = v.cpu_stats.cpu_usage.percpu_usage.len() as f64;
    }
    if system_delta > 0.0 && cpu_delta > 0.0 {
        (cpu_delta / system_delta) * online * 100.0
    } else {
        0.0
    }
}

/// docker's `calculateMemUsageUnixNoCache`: usage minus the inactive file
/// cache (`total_inactive_file` on cgroup v1, `inactive_file` on v2).
pub(crate) fn mem_usage_no_cache(m: &MemoryStats) -> f64 {
    if let Some(v) = m.stats.total_inactive_file {
        if v < m.usage {
            return (m.usage - v) as f64;
        }
    }
    let v = m.stats.inactive_file.unwrap_or(0);
    if v < m.usage {
        return (m.usage - v) as f64;
    }
    m.usage as f64
}

/// docker's `calculateMemPercentUnixNoCache`.
pub(crate) fn mem_percent(limit: f64, used: f64) -> f64 {
    if limit != 0.0 {
        used / limit * 100.0
    } else {
        0.0
    }
}

/// docker's `calculateBlockIO`: bytes read and written, by the first letter
/// of each entry's `op`.
pub(crate) fn block_io(b: &BlkioStats) -> (u64, u64) {
    let (mut read, mut write) = (0u64, 0u64);
    for e in &b.io_service_bytes_recursive {
        match e.op.as_bytes().first() {
            Some(b'r' | b'R') => read = read.wrapping_add(e.value),
            Some(b'w' | b'W') => write = write.wrapping_add(e.value),
            _ => {}
        }
    }
    (read, write)
}

/// docker's `calculateNetwork`: received and sent bytes over all
/// interfaces.
pub(crate) fn network_io(n: &BTreeMap<String, NetworkStats>) -> (f64, f64) {
    n.values().fold((0.0, 0.0), |(rx, tx), v| {
        (rx + v.rx_bytes as f64, tx + v.tx_bytes as f64)
    })
}

/// The row numbers of one sample (Linux daemon), as docker's `collect`.
pub(crate) fn entry_from(container: &str, v: &StatsResponse) -> StatsEntry {
    let mem = mem_usage_no_cache(&v.memory_stats);
    let limit = v.memory_stats.limit as f64;
    let (blk_read, blk_write) = block_io(&v.blkio_stats);
    let (rx, tx) = network_io(&v.networks);
    StatsEntry {
        container: container.to_string(),
        name: v.name.clone(),
        id: v.id.clone(),
        cpu_percentage: cpu_percent_unix(v),
        memory: mem,
        memory_limit: limit,
        memory_percentage: mem_percent(limit, mem),
        network_rx: rx,
        network_tx: tx,
        block_read: blk_read as f64,
        block_write: blk_write as f64,
        pids_current: v.pids_stats.current,
        is_invalid: false,
    }
}

/// docker's `formatPercentage`: two decimals and `%`.
fn percentage(v: f64) -> String {
    format!("{v:.2}%")
}

/// The column titles of docker's stats table.
pub(crate) fn stats_header() -> Value {
    Value::object([
        ("BlockIO", Value::str("BLOCK I/O")),
        ("CPUPerc", Value::str("CPU %")),
        ("Container", Value::str("CONTAINER")),
        ("ID", Value::str("CONTAINER ID")),
        ("MemPerc", Value::str("MEM %")),
        ("MemUsage", Value::str("MEM USAGE / LIMIT")),
        ("Name", Value::str("NAME")),
        ("NetIO", Value::str("NET I/O")),
        ("PIDs", Value::str("PIDS")),
    ])
}

/// One row with the fields of docker's `statsContext` (in the order its
/// JSON prints them).
pub(crate) fn stats_row(s: &StatsEntry, trunc: bool) -> Value {
    Value::context(
        "*container.statsContext",
        stats_fields(s, trunc).map(|(k, v)| (k, Value::String(v))),
        [],
    )
}

/// The fields of docker's `statsContext`, as text.
fn stats_fields(s: &StatsEntry, trunc: bool) -> [(&'static str, String); 9] {
    let invalid = |text: String| {
        if s.is_invalid {
            "--".to_string()
        } else {
            text
        }
    };
    let name = match s.name.get(1..) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => "--".to_string(),
    };
    let id = if trunc {
        truncate_id(&s.id)
    } else {
        s.id.clone()
    };
    let mem_usage = if s.is_invalid {
        "-- / --".to_string()
    } else {
        format!("{} / {}", bytes_size(s.memory), bytes_size(s.memory_limit))
    };
    let io = |a: f64, b: f64| {
        format!(
            "{} / {}",
            human_size_with_precision(a, 3),
            human_size_with_precision(b, 3)
        )
    };
    [
        ("BlockIO", invalid(io(s.block_read, s.block_write))),
        ("CPUPerc", invalid(percentage(s.cpu_percentage))),
        ("Container", s.container.clone()),
        ("ID", id),
        ("MemPerc", invalid(percentage(s.memory_percentage))),
        ("MemUsage", mem_usage),
        ("Name", name),
        ("NetIO", invalid(io(s.network_rx, s.network_tx))),
        ("PIDs", invalid(s.pids_current.to_string())),
    ]
}

/// The format docker uses: `--format`, with `table` meaning its default.
pub(crate) fn stats_format(format: Option<&str>) -> &str {
    match format {
        None | Some("") | Some("table") => STATS_TABLE,
        Some(f) => f,
    }
}

/// The rendered table (or template lines) for the current entries.
pub(crate) fn stats_text(
    format: &str,
    entries: &[StatsEntry],
    trunc: bool,
) -> Result<String, TemplateError> {
    if format == STATS_TABLE {
        return Ok(default_table(entries, trunc));
    }
    let rows: Vec<Value> = entries.iter().map(|e| stats_row(e, trunc)).collect();
    render(format, &stats_header(), &rows)
}

/// [`STATS_TABLE`] laid out without the template engine: a stream redraws
/// it every second for every container, and this is what it costs.
fn default_table(entries: &[StatsEntry], trunc: bool) -> String {
    // STATS_TABLE's fields, in its order.
    const COLUMNS: [&str; 8] = [
        "ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs",
    ];
    let header = stats_header();
    let mut lines = vec![COLUMNS.map(|c| header.get(c).map(Value::to_string).unwrap_or_default())];
    lines.extend(entries.iter().map(|e| {
        let mut fields = stats_fields(e, trunc);
        COLUMNS.map(|c| {
            let i = fields
                .iter()
                .position(|(k, _)| *k == c)
                .expect("a stats field");
            std::mem::take(&mut fields[i].1)
        })
    }));
    let mut text = String::new();
    for line in lines {
        text.push_str(&line.join("\t"));
        text.push('\n');
    }
    tabwrite(&text, 10, 3)
}

/// One screen of streaming `stats`: cursor home, each line followed by
/// an erase-to-end-of-line (after a space, as docker's `Fprintln(line,
/// "\033[K")` writes it), then erase below for rows that went away.
pub(crate) fn stream_frame(text: &str) -> String {
    let mut frame = String::with_capacity(text.len() + 64);
    frame.push_str("\x1b[H");
    for line in text.split('\n') {
        frame.push_str(line);
        frame.push_str(" \x1b[K\n");
    }
    frame.push_str("\x1b[J");
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cgroup v1 sample shaped like dockerd 20.10's (`stream=0`).
    const V1_SAMPLE: &str = r#"{"read":"2026-01-01T00:00:01.5Z","preread":"2026-01-01T00:00:00.5Z",
     "pids_stats":{"current":3},
     "blkio_stats":{"io_service_bytes_recursive":[{"major":8,"minor":0,"op":"Read","value":4096000},{"major":8,"minor":0,"op":"Write","value":12288},{"major":8,"minor":0,"op":"Sync","value":5},{"major":8,"minor":0,"op":"Total","value":4108288}],
       "io_serviced_recursive":[],"io_queue_recursive":[],"io_service_time_recursive":[],"io_wait_time_recursive":[],"io_merged_recursive":[],"io_time_recursive":[],"sectors_recursive":[]},
     "num_procs":0,"storage_stats":{},
     "cpu_stats":{"cpu_usage":{"total_usage":123456789000,"percpu_usage":[61728394500,61728394500],"usage_in_kernelmode":1000,"usage_in_usermode":2000},"system_cpu_usage":9876543210000000,"online_cpus":2,"throttling_data":{"periods":0,"throttled_periods":0,"throttled_time":0}},
     "precpu_stats":{"cpu_usage":{"total_usage":123356789000,"percpu_usage":[61678394500,61678394500],"usage_in_kernelmode":900,"usage_in_usermode":1900},"system_cpu_usage":9876541210000000,"online_cpus":2,"throttling_data":{"periods":0,"throttled_periods":0,"throttled_time":0}},
     "memory_stats":{"usage":7340032,"max_usage":8388608,"stats":{"total_inactive_file":1048576,"cache":2097152,"rss":4194304},"limit":2084020224},
     "name":"/flow-e","id":"4f1a2b3c4d5e0000000000000000000000000000000000000000000000000000",
     "networks":{"eth0":{"rx_bytes":1296,"rx_packets":16,"rx_errors":0,"rx_dropped":0,"tx_bytes":0,"tx_packets":0,"tx_errors":0,"tx_dropped":0},
                 "eth1":{"rx_bytes":1000000,"rx_packets":16,"rx_errors":0,"rx_dropped":0,"tx_bytes":2500,"tx_packets":0,"tx_errors":0,"tx_dropped":0}}}"#;

    /// A cgroup v2 sample: no `online_cpus`, no `percpu_usage` on the
    /// precpu side, `inactive_file` instead of `total_inactive_file`.
    const V2_SAMPLE: &str = r#"{"name":"/web","id":"abcdef0123456789",
     "pids_stats":{"current":12,"limit":4915},
     "blkio_stats":{"io_service_bytes_recursive":[{"major":259,"minor":0,"op":"read","value":1572864},{"major":259,"minor":0,"op":"write","value":0}],"io_serviced_recursive":null},
     "cpu_stats":{"cpu_usage":{"total_usage":2500000000,"percpu_usage":[1,2,3,4],"usage_in_kernelmode":0,"usage_in_usermode":0},"system_cpu_usage":400000000000},
     "precpu_stats":{"cpu_usage":{"total_usage":2000000000,"usage_in_kernelmode":0,"usage_in_usermode":0},"system_cpu_usage":396000000000,"online_cpus":4},
     "memory_stats":{"usage":157286400,"stats":{"anon":104857600,"file":52428800,"inactive_file":41943040,"active_file":10485760},"limit":536870912},
     "networks":null}"#;

    #[test]
    fn cgroup_v1_sample_like_docker() {
        let v: StatsResponse = serde_json::from_str(V1_SAMPLE).unwrap();
        let e = entry_from("flow-e", &v);
        // (123456789000-123356789000) / (9876543210000000-9876541210000000) * 2 * 100
        assert!((e.cpu_percentage - 10.0).abs() < 1e-9);
        assert_eq!(e.memory, 6_291_456.0); // 7 MiB usage - 1 MiB inactive file
        assert_eq!(e.memory_limit, 2_084_020_224.0);
        assert!((e.memory_percentage - 6_291_456.0 / 2_084_020_224.0 * 100.0).abs() < 1e-12);
        assert_eq!((e.network_rx, e.network_tx), (1_001_296.0, 2500.0));
        assert_eq!((e.block_read, e.block_write), (4_096_000.0, 12288.0));
        assert_eq!(e.pids_current, 3);
        // docker stats --no-stream against this answer, byte for byte.
        let want = "\
CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O       BLOCK I/O        PIDS
4f1a2b3c4d5e   flow-e    10.00%    6MiB / 1.941GiB     0.30%     1MB / 2.5kB   4.1MB / 12.3kB   3
";
        assert_eq!(
            stats_text(STATS_TABLE, std::slice::from_ref(&e), true).unwrap(),
            want
        );
        let want_no_trunc = "\
CONTAINER ID                                                       NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O       BLOCK I/O        PIDS
4f1a2b3c4d5e0000000000000000000000000000000000000000000000000000   flow-e    10.00%    6MiB / 1.941GiB     0.30%     1MB / 2.5kB   4.1MB / 12.3kB   3
";
        assert_eq!(
            stats_text(STATS_TABLE, std::slice::from_ref(&e), false).unwrap(),
            want_no_trunc
        );
        assert_eq!(
            stats_text("{{json .}}", &[e], true).unwrap(),
            "{\"BlockIO\":\"4.1MB / 12.3kB\",\"CPUPerc\":\"10.00%\",\"Container\":\"flow-e\",\"ID\":\"4f1a2b3c4d5e\",\"MemPerc\":\"0.30%\",\"MemUsage\":\"6MiB / 1.941GiB\",\"Name\":\"flow-e\",\"NetIO\":\"1MB / 2.5kB\",\"PIDs\":\"3\"}\n"
        );
    }

    #[test]
    fn cgroup_v2_sample_like_docker() {
        let v: StatsResponse = serde_json::from_str(V2_SAMPLE).unwrap();
        let e = entry_from("web", &v);
        // No online_cpus: the length of percpu_usage (4) is used.
        assert!((e.cpu_percentage - 500_000_000.0 / 4_000_000_000.0 * 4.0 * 100.0).abs() < 1e-9);
        assert_eq!(e.memory, 115_343_360.0); // 150 MiB - 40 MiB inactive_file
        let row = stats_row(&e, true);
        let get = |k: &str| row.get(k).unwrap().to_string();
        assert_eq!(get("CPUPerc"), "50.00%");
        assert_eq!(get("MemUsage"), "110MiB / 512MiB");
        assert_eq!(get("MemPerc"), "21.48%");
        assert_eq!(get("NetIO"), "0B / 0B");
        assert_eq!(get("BlockIO"), "1.57MB / 0B");
        assert_eq!(get("PIDs"), "12");
        assert_eq!(get("Name"), "web");
        assert_eq!(get("ID"), "abcdef012345");
    }

    #[test]
    fn memory_edge_cases() {
        let m = |usage: u64, stats: &[(&str, u64)]| {
            let get = |k: &str| stats.iter().find(|(name, _)| *name == k).map(|(_, v)| *v);
            MemoryStats {
                usage,
                limit: 0,
                stats: CacheStats {
                    total_inactive_file: get("total_inactive_file"),
                    inactive_file: get("inactive_file"),
                },
            }
        };
        // The cache is only subtracted when smaller than the usage.
        assert_eq!(
            mem_usage_no_cache(&m(100, &[("total_inactive_file", 100)])),
            100.0
        );
        assert_eq!(
            mem_usage_no_cache(&m(
                100,
                &[("total_inactive_file", 100), ("inactive_file", 30)]
            )),
            70.0
        );
        assert_eq!(mem_usage_no_cache(&m(100, &[])), 100.0);
        assert_eq!(mem_usage_no_cache(&m(0, &[])), 0.0);
        assert_eq!(mem_percent(0.0, 5.0), 0.0);
    }

    #[test]
    fn cpu_needs_both_deltas_positive() {
        let mut v: StatsResponse = serde_json::from_str(V1_SAMPLE).unwrap();
        v.precpu_stats = CpuStats::default(); // the first sample of a stream
        assert!(cpu_percent_unix(&v) > 0.0);
        v.precpu_stats.system_cpu_usage = v.cpu_stats.system_cpu_usage;
        assert_eq!(cpu_percent_unix(&v), 0.0);
        let v: StatsResponse =
            serde_json::from_str(r#"{"cpu_stats":null,"memory_stats":{}}"#).unwrap();
        assert_eq!(cpu_percent_unix(&v), 0.0);
    }

    #[test]
    fn default_table_is_the_templates_output() {
        let v1: StatsResponse = serde_json::from_str(V1_SAMPLE).unwrap();
        let v2: StatsResponse = serde_json::from_str(V2_SAMPLE).unwrap();
        let mut gone = entry_from("a-rather-long-container-name", &v2);
        gone.reset();
        let entries = [
            entry_from("flow-e", &v1),
            entry_from("web", &v2),
            gone,
            StatsEntry::default(),
        ];
        for n in 0..=entries.len() {
            for trunc in [true, false] {
                let rows: Vec<Value> = entries[..n].iter().map(|e| stats_row(e, trunc)).collect();
                assert_eq!(
                    stats_text(STATS_TABLE, &entries[..n], trunc).unwrap(),
                    render(STATS_TABLE, &stats_header(), &rows).unwrap()
                );
            }
        }
    }

    #[test]
    fn invalid_rows_and_custom_formats() {
        let mut e = StatsEntry {
            container: "flow-e".into(),
            name: "/flow-e".into(),
            id: "4f1a2b3c4d5e0000".into(),
            cpu_percentage: 3.0,
            ..Default::default()
        };
        e.reset();
        let row = stats_row(&e, true);
        let get = |k: &str| row.get(k).unwrap().to_string();
        assert_eq!(get("CPUPerc"), "--");
        assert_eq!(get("MemUsage"), "-- / --");
        assert_eq!(get("PIDs"), "--");
        assert_eq!(get("Name"), "flow-e");
        let unknown = stats_row(&StatsEntry::default(), true);
        assert_eq!(unknown.get("Name").unwrap().to_string(), "--");
        assert_eq!(unknown.get("ID").unwrap().to_string(), "");
        assert_eq!(
            stats_text("table {{.Name}}\t{{.CPUPerc}}", &[], true).unwrap(),
            "NAME      CPU %\n"
        );
        assert_eq!(stats_format(Some("table")), STATS_TABLE);
        assert_eq!(stats_format(None), STATS_TABLE);
        assert_eq!(stats_format(Some("{{.Name}}")), "{{.Name}}");
        assert!(stats_text("{{.Bogus}}", &[e], true)
            .unwrap_err()
            .0
            .contains("can't evaluate field Bogus in type *container.statsContext"));
    }

    #[test]
    fn percentages_round_like_go() {
        assert_eq!(percentage(0.0), "0.00%");
        assert_eq!(percentage(0.301_9), "0.30%");
        assert_eq!(percentage(99.999), "100.00%");
        assert_eq!(percentage(12.345_6), "12.35%");
    }

    #[test]
    fn frames_redraw_in_place() {
        assert_eq!(
            stream_frame("A   B\n1   2\n"),
            "\x1b[HA   B \x1b[K\n1   2 \x1b[K\n \x1b[K\n\x1b[J"
        );
    }
}

//! What `docker stats` shows, read from a cgroup, and the pure parsers of
//! the cgroup and `/proc` files it comes from.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Docker's clock for `/proc/stat` and v1 `cpuacct.stat`: USER_HZ, which is
/// 100 on every Linux architecture Docker runs on (moby hard-codes it too).
const CLOCK_TICKS_PER_SECOND: u64 = 100;
const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// A v1 limit at or above this is "no limit" (the kernel reports
/// 9223372036854771712, `PAGE_COUNTER_MAX` pages).
const V1_UNLIMITED: u64 = 1 << 62;

/// A container's resource usage, the cgroup part of Docker's stats JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// CPU time and throttling.
    pub cpu: CpuStats,
    /// Memory usage and limit.
    pub memory: MemoryStats,
    /// Processes.
    pub pids: PidsStats,
    /// Block I/O.
    pub blkio: BlkioStats,
}

/// `cpu_stats.cpu_usage` and `cpu_stats.throttling_data`; all times in ns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuStats {
    /// `total_usage`.
    pub total_usage: u64,
    /// `percpu_usage`, one per possible CPU (v1 only; empty on v2, where
    /// Docker leaves it out).
    pub percpu_usage: Vec<u64>,
    /// `usage_in_kernelmode`.
    pub usage_in_kernelmode: u64,
    /// `usage_in_usermode`.
    pub usage_in_usermode: u64,
    /// `throttling_data`.
    pub throttling: Throttling,
}

/// CFS throttling (`cpu.stat`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Throttling {
    /// `periods`: enforcement periods that have elapsed.
    pub periods: u64,
    /// `throttled_periods`: periods in which the cgroup was throttled.
    pub throttled_periods: u64,
    /// `throttled_time` in ns.
    pub throttled_time: u64,
}

/// `memory_stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// `usage` in bytes (v1 `memory.usage_in_bytes`, v2 `memory.current`).
    /// The docker CLI subtracts `stats["total_inactive_file"]` (v1) or
    /// `stats["inactive_file"]` (v2) itself.
    pub usage: u64,
    /// `max_usage` (v1 `memory.max_usage_in_bytes`; `None` on v2, where
    /// Docker leaves it out).
    pub max_usage: Option<u64>,
    /// `failcnt` (v1 `memory.failcnt`; v2 the `oom` count of
    /// `memory.events`, as Docker).
    pub failcnt: Option<u64>,
    /// `limit` in bytes; `None` when unlimited, where Docker reports the
    /// machine's memory ([`machine_memory`]). Docker also reports the
    /// machine's memory for a limit above it.
    pub limit: Option<u64>,
    /// `stats`: `memory.stat` as it is (v1 and v2 keys differ).
    pub stats: KeyedValues,
}

/// A flat-keyed file's numbers, sorted by key (the order Docker's JSON
/// shows `memory_stats.stats` in). The keys are shared between the
/// samples of one reader ([`KeyedParser`]): a stream reads the same ~70
/// keys every second, and a sample costs one allocation, not one a key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyedValues {
    keys: Arc<[Box<str>]>,
    values: Vec<u64>,
}

impl KeyedValues {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<u64> {
        let i = self.keys.binary_search_by(|k| (**k).cmp(key)).ok()?;
        Some(self.values[i])
    }

    /// The entries, sorted by key.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, u64)> {
        self.keys
            .iter()
            .map(|k| &**k)
            .zip(self.values.iter().copied())
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl<K: AsRef<str>> FromIterator<(K, u64)> for KeyedValues {
    /// Sorted; the last of equal keys wins.
    fn from_iter<I: IntoIterator<Item = (K, u64)>>(entries: I) -> KeyedValues {
        let map: BTreeMap<Box<str>, u64> = entries
            .into_iter()
            .map(|(k, v)| (k.as_ref().into(), v))
            .collect();
        KeyedValues {
            values: map.values().copied().collect(),
            keys: map.into_keys().collect(),
        }
    }
}

impl serde::Serialize for KeyedValues {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

/// Parses one flat-keyed file again and again: while the file lists the
/// same keys in the same order (a cgroup's `memory.stat` always does), the
/// keys and their sorted order are reused.
#[derive(Debug, Default)]
pub(super) struct KeyedParser {
    /// The file's keys as last seen, in its order, each followed by a
    /// newline: one block to compare a new text's keys with (keys in
    /// boxes of their own were a cache miss each, 100 streams later).
    shape: String,
    /// The sorted keys handed out.
    sorted: Arc<[Box<str>]>,
    /// For each sorted key, the index of its (last) line in the file.
    order: Vec<usize>,
    /// The values in the file's order.
    scratch: Vec<u64>,
}

impl KeyedParser {
    pub(super) fn parse(&mut self, text: &str) -> KeyedValues {
        if !self.values_in_shape(text) {
            self.learn(text);
        }
        KeyedValues {
            keys: Arc::clone(&self.sorted),
            values: self.order.iter().map(|&i| self.scratch[i]).collect(),
        }
    }

    /// Takes the values of `text` into `scratch` when it is exactly lines
    /// of "key value", one space between, with the keys of `shape` in its
    /// order; anything else (a new key, junk, other spacing) is left to
    /// the general parse.
    fn values_in_shape(&mut self, text: &str) -> bool {
        self.scratch.clear();
        let mut shape = self.shape.as_bytes();
        for line in text.split_terminator('\n').map(str::as_bytes) {
            let Some(space) = line.iter().position(|&b| b == b' ') else {
                return false;
            };
            let (key, digits) = (&line[..space], &line[space + 1..]);
            match shape.strip_prefix(key).and_then(|s| s.strip_prefix(b"\n")) {
                Some(rest) => shape = rest,
                None => return false,
            }
            match parse_digits(digits) {
                Some(v) => self.scratch.push(v),
                None => return false,
            }
        }
        shape.is_empty()
    }

    /// Takes the keys of `text` as the new shape and its values into
    /// `scratch`, in one pass.
    fn learn(&mut self, text: &str) {
        self.shape.clear();
        self.scratch.clear();
        // The last line of a key wins, as in a map.
        let mut index: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, (k, v)) in flat_entries(text).enumerate() {
            self.shape.push_str(k);
            self.shape.push('\n');
            self.scratch.push(v);
            index.insert(k, i);
        }
        self.sorted = index.keys().map(|&k| k.into()).collect();
        self.order = index.into_values().collect();
    }
}

/// `pids_stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PidsStats {
    /// `current`: processes and threads in the cgroup.
    pub current: u64,
    /// `limit`; `None` for "max" (Docker then sends 0 or leaves it out).
    pub limit: Option<u64>,
}

/// `blkio_stats`: the two lists the docker CLI sums ("Block I/O").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlkioStats {
    /// `io_service_bytes_recursive`: bytes per device and operation.
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// `io_serviced_recursive`: operations per device and operation.
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

/// One line of a blkio list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlkioEntry {
    /// Device major number.
    pub major: u64,
    /// Device minor number.
    pub minor: u64,
    /// v1: "Read", "Write", "Sync", "Async", "Discard", "Total" as the
    /// kernel writes them; v2: "read", "write" as Docker does.
    pub op: String,
    /// Bytes or operations.
    pub value: u64,
}

/// The host's CPU time in ns, as Docker's `system_cpu_usage`: the first
/// seven fields of `/proc/stat`'s `cpu` line (user … softirq) in clock
/// ticks × 1e9 / 100. 0 when `/proc/stat` cannot be read.
pub fn system_cpu_usage() -> u64 {
    proc_stat().map_or(0, |(ns, _)| ns)
}

/// How many CPUs are online (the `cpuN` lines of `/proc/stat`, as Docker's
/// `online_cpus`); at least 1.
pub fn online_cpus() -> u32 {
    proc_stat().map_or(1, |(_, n)| n.max(1))
}

/// The machine's memory in bytes (`MemTotal` of `/proc/meminfo`), which
/// Docker reports as the limit of a container without one.
pub fn machine_memory() -> Option<u64> {
    parse_meminfo_total(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

fn proc_stat() -> Option<(u64, u32)> {
    match std::fs::read_to_string("/proc/stat") {
        Ok(text) => parse_proc_stat(&text),
        Err(e) => {
            tracing::warn!("cannot read /proc/stat: {e}");
            None
        }
    }
}

/// The CPUs or memory nodes of a cpuset list ("0-3,6,8-9"); `None` when it
/// is not one. An empty list is an empty set.
pub fn parse_cpuset(list: &str) -> Option<BTreeSet<u32>> {
    let mut set = BTreeSet::new();
    let list = list.trim();
    if list.is_empty() {
        return Some(set);
    }
    for part in list.split(',') {
        let number = |s: &str| -> Option<u32> {
            let s = s.trim();
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        match part.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi) = (number(lo)?, number(hi)?);
                if lo > hi || hi - lo > 1 << 16 {
                    return None;
                }
                set.extend(lo..=hi);
            }
            None => {
                set.insert(number(part)?);
            }
        }
    }
    Some(set)
}

/// Host CPU time in ns and the number of online CPUs, from `/proc/stat`.
pub(super) fn parse_proc_stat(text: &str) -> Option<(u64, u32)> {
    let mut total = None;
    let mut cpus = 0;
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        match fields.next() {
            Some("cpu") => {
                let ticks: Vec<u64> = fields
                    .take(7)
                    .map(|f| f.parse().ok())
                    .collect::<Option<_>>()?;
                if ticks.len() < 7 {
                    return None;
                }
                let sum: u64 = ticks.iter().sum();
                total = Some(sum * (NANOS_PER_SECOND / CLOCK_TICKS_PER_SECOND));
            }
            Some(name) if name.len() > 3 && name.starts_with("cpu") => cpus += 1,
            _ => {}
        }
    }
    Some((total?, cpus))
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
pub(super) fn parse_meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut fields = line.split_ascii_whitespace().skip(1);
    let n: u64 = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") => n.checked_mul(1024),
        None => Some(n),
        Some(_) => None,
    }
}

/// A "key value" file (`memory.stat`, `cpu.stat`, `cpuacct.stat`,
/// `memory.events`, `memory.oom_control`); lines whose value is not a
/// number are left out.
pub(super) fn parse_flat_keyed(text: &str) -> BTreeMap<String, u64> {
    flat_entries(text)
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// A decimal u64 of digits alone; `None` for anything else or overflow.
fn parse_digits(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let d = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// The entries of a "key value" file in its order, less lines whose value
/// is not a number.
fn flat_entries(text: &str) -> impl Iterator<Item = (&str, u64)> {
    text.lines().filter_map(|line| {
        let (key, value) = line.trim().split_once(char::is_whitespace)?;
        Some((key, value.trim().parse().ok()?))
    })
}

/// A limit file: a number, or "max" (`None`). `Err` when neither.
pub(super) fn parse_limit(text: &str) -> Result<Option<u64>, ()> {
    match text.trim() {
        "max" => Ok(None),
        n => n.parse().map(Some).map_err(|_| ()),
    }
}

/// A v1 `memory.limit_in_bytes`-style value: `None` when it means "none".
pub(super) fn v1_limit(n: u64) -> Option<u64> {
    (n < V1_UNLIMITED).then_some(n)
}

/// v1 `cpuacct.usage_percpu`: numbers separated by spaces.
pub(super) fn parse_percpu(text: &str) -> Option<Vec<u64>> {
    text.split_ascii_whitespace()
        .map(|n| n.parse().ok())
        .collect()
}

/// v1 `cpuacct.usage_all`, summed up.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct UsageAll {
    /// Per CPU, user + system ns (what `cpuacct.usage_percpu` shows).
    pub percpu: Vec<u64>,
    /// All CPUs' user ns.
    pub user: u64,
    /// All CPUs' system ns.
    pub system: u64,
}

/// v1 `cpuacct.usage_all`: a `cpu user system` header, then a line per
/// possible CPU in its order.
pub(super) fn parse_usage_all(text: &str) -> Option<UsageAll> {
    let mut lines = text.lines();
    if lines
        .next()?
        .split_ascii_whitespace()
        .ne(["cpu", "user", "system"])
    {
        return None;
    }
    let mut all = UsageAll {
        percpu: Vec::new(),
        user: 0,
        system: 0,
    };
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let mut f = line.split_ascii_whitespace().skip(1).map(str::parse::<u64>);
        let (Some(Ok(user)), Some(Ok(system)), None) = (f.next(), f.next(), f.next()) else {
            return None;
        };
        all.percpu.push(user + system);
        all.user += user;
        all.system += system;
    }
    Some(all)
}

/// v1 `cpuacct.stat` (`user`/`system` in clock ticks) as (user, kernel) ns.
pub(super) fn parse_cpuacct_stat(text: &str) -> (u64, u64) {
    let m = parse_flat_keyed(text);
    let ns = |k: &str| m.get(k).copied().unwrap_or(0) * (NANOS_PER_SECOND / CLOCK_TICKS_PER_SECOND);
    (ns("user"), ns("system"))
}

/// Throttling from a `cpu.stat` map: v1 `throttled_time` is in ns, v2
/// `throttled_usec` in µs.
pub(super) fn throttling(cpu_stat: &BTreeMap<String, u64>) -> Throttling {
    let get = |k: &str| cpu_stat.get(k).copied();
    Throttling {
        periods: get("nr_periods").unwrap_or(0),
        throttled_periods: get("nr_throttled").unwrap_or(0),
        throttled_time: get("throttled_time")
            .or_else(|| get("throttled_usec").map(|us| us * 1000))
            .unwrap_or(0),
    }
}

/// A v1 blkio file ("8:0 Read 4096" lines, then a device-less "Total N"
/// that is left out).
pub(super) fn parse_v1_blkio(text: &str) -> Option<Vec<BlkioEntry>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        match fields[..] {
            [] | ["Total", _] => {}
            [dev, op, value] => {
                let (major, minor) = parse_device(dev)?;
                out.push(BlkioEntry {
                    major,
                    minor,
                    op: op.to_string(),
                    value: value.parse().ok()?,
                });
            }
            _ => return None,
        }
    }
    Some(out)
}

/// v2 `io.stat` ("8:0 rbytes=… wbytes=… rios=… wios=… dbytes=… dios=…") as
/// Docker's read/write entries.
pub(super) fn parse_io_stat(text: &str) -> Option<BlkioStats> {
    let mut stats = BlkioStats::default();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(dev) = fields.next() else { continue };
        let (major, minor) = parse_device(dev)?;
        let mut kv = BTreeMap::new();
        for f in fields {
            let (k, v) = f.split_once('=')?;
            // Keys we do not use may carry non-numbers (e.g. "cost.*").
            if let Ok(v) = v.parse::<u64>() {
                kv.insert(k, v);
            }
        }
        let entry = |op: &str, key: &str| BlkioEntry {
            major,
            minor,
            op: op.to_string(),
            value: kv.get(key).copied().unwrap_or(0),
        };
        stats
            .io_service_bytes_recursive
            .extend([entry("read", "rbytes"), entry("write", "wbytes")]);
        stats
            .io_serviced_recursive
            .extend([entry("read", "rios"), entry("write", "wios")]);
    }
    Some(stats)
}

fn parse_device(dev: &str) -> Option<(u64, u64)> {
    let (major, minor) = dev.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy as _;

    // From a Debian 12 host (cgroup v1, 2 CPUs).
    const PROC_STAT: &str = "cpu  329996 0 65989 463390 3084 0 560 88 0 0
cpu0 161281 0 25947 243623 609 0 103 45 0 0
cpu1 168714 0 40041 219766 2474 0 457 43 0 0
intr 7226765 0 0 0 0 0
ctxt 1234567
btime 1700000000
processes 98765
procs_running 2
procs_blocked 0
softirq 123 0 1 2 3 4 5 6 7 8
";

    #[test]
    fn proc_stat_sums_seven_fields_like_docker() {
        let (ns, cpus) = parse_proc_stat(PROC_STAT).unwrap();
        // user nice system idle iowait irq softirq; steal (88) not counted.
        let ticks = 329996 + 65989 + 463390 + 3084 + 560;
        assert_eq!(ns, ticks * 10_000_000);
        assert_eq!(cpus, 2);
        assert_eq!(parse_proc_stat("cpu 1 2 3\n"), None);
        assert_eq!(parse_proc_stat("cpu0 1 2 3 4 5 6 7\n"), None);
    }

    #[test]
    fn this_machine_has_cpus_and_time() {
        assert!(online_cpus() >= 1);
        assert!(system_cpu_usage() > 0);
        assert!(machine_memory().unwrap() > 1 << 20);
    }

    #[test]
    fn meminfo_total() {
        let t = "MemTotal:       24684092 kB\nMemFree:         1234 kB\n";
        assert_eq!(parse_meminfo_total(t), Some(24684092 * 1024));
        assert_eq!(parse_meminfo_total("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn cpuset_lists() {
        let s = |v: &[u32]| v.iter().copied().collect::<BTreeSet<u32>>();
        assert_eq!(parse_cpuset("0-3,6,8-9"), Some(s(&[0, 1, 2, 3, 6, 8, 9])));
        assert_eq!(parse_cpuset("1\n"), Some(s(&[1])));
        assert_eq!(parse_cpuset(""), Some(s(&[])));
        assert_eq!(parse_cpuset("0, 1"), Some(s(&[0, 1])));
        for bad in ["0-a", "3-1", "-1", "1-", "0,,1", "+1", "0-99999999", "1 2"] {
            assert_eq!(parse_cpuset(bad), None, "{bad}");
        }
    }

    // A v1 memory.stat of a busy container (trimmed).
    const V1_MEMORY_STAT: &str = "cache 3559079936
rss 36974592
rss_huge 0
shmem 0
mapped_file 51359744
dirty 319488
writeback 0
swap 0
pgpgin 108642168
pgpgout 108016546
pgfault 118396746
pgmajfault 21577
inactive_anon 36818944
active_anon 73728
inactive_file 1912823808
active_file 1646256128
unevictable 0
hierarchical_memory_limit 9223372036854771712
hierarchical_memsw_limit 9223372036854771712
total_cache 3559079936
total_rss 36974592
total_inactive_file 1912823808
";

    #[test]
    fn v1_memory_stat() {
        let m = parse_flat_keyed(V1_MEMORY_STAT);
        assert_eq!(m.len(), 22);
        assert_eq!(m["cache"], 3559079936);
        assert_eq!(m["total_inactive_file"], 1912823808);
        assert_eq!(m["hierarchical_memory_limit"], 9223372036854771712);
        assert_eq!(v1_limit(m["hierarchical_memory_limit"]), None);
        assert_eq!(v1_limit(268435456), Some(268435456));
    }

    #[test]
    fn keyed_parser_reuses_keys_and_follows_a_new_shape() {
        let mut p = KeyedParser::default();
        let a = p.parse(V1_MEMORY_STAT);
        let map = parse_flat_keyed(V1_MEMORY_STAT);
        assert!(a.iter().map(|(k, v)| (k.to_string(), v)).eq(map.clone()));
        // Same keys, new values: the same key list is handed out.
        let b = p.parse(&V1_MEMORY_STAT.replace("cache 3559079936", "cache 1"));
        assert!(Arc::ptr_eq(&a.keys, &b.keys));
        assert_eq!(
            (a.get("cache"), b.get("cache")),
            (Some(3559079936), Some(1))
        );
        assert_eq!(b.get("total_inactive_file"), Some(1912823808));
        assert_eq!(b.get("nope"), None);
        // A key more, a line of junk, a repeated key (the last wins).
        let c = p.parse("zz 5\nb x\ncache 7\nrss 2\ncache 9\n");
        assert_eq!(
            c.iter().collect::<Vec<_>>(),
            [("cache", 9), ("rss", 2), ("zz", 5)]
        );
        let d = p.parse("zz 6\ncache 8\nrss 3\ncache 10\n");
        assert!(Arc::ptr_eq(&c.keys, &d.keys));
        assert_eq!(
            d.iter().collect::<Vec<_>>(),
            [("cache", 10), ("rss", 3), ("zz", 6)]
        );
        // Fewer keys.
        let e = p.parse("zz 6\n");
        assert_eq!(e.iter().collect::<Vec<_>>(), [("zz", 6)]);
        assert!(p.parse("").is_empty());
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"cache":10,"rss":3,"zz":6}"#
        );
    }

    proptest::proptest! {
        /// Whatever a file turns into from one read to the next, the
        /// parser reads it as a fresh parse would.
        #[test]
        fn keyed_parser_agrees_with_a_fresh_parse(
            files in proptest::collection::vec(
                proptest::collection::vec(
                    (
                        "[a-d]{1,2}",
                        "( |  |\t)",
                        proptest::prop_oneof![
                            (0u64..1000).prop_map(|v| v.to_string()),
                            proptest::prelude::any::<u64>().prop_map(|v| v.to_string()),
                            proptest::prelude::Just("18446744073709551616".to_string()),
                            "[+0-9x -]{0,4}",
                        ],
                    ),
                    0..6,
                ),
                1..6,
            )
        ) {
            let mut p = KeyedParser::default();
            for lines in files {
                let text: String = lines
                    .iter()
                    .map(|(k, sep, v)| format!("{k}{sep}{v}\n"))
                    .collect();
                let want: Vec<(String, u64)> = parse_flat_keyed(&text).into_iter().collect();
                // Twice: the second read takes the shape's path when it
                // has one.
                for _ in 0..2 {
                    let got: Vec<(String, u64)> =
                        p.parse(&text).iter().map(|(k, v)| (k.to_string(), v)).collect();
                    proptest::prop_assert_eq!(&got, &want);
                }
            }
        }
    }

    #[test]
    fn flat_keyed_skips_junk() {
        let m = parse_flat_keyed("a 1\nb x\n\nc  3\nd\n");
        assert_eq!(
            m.into_iter().collect::<Vec<_>>(),
            [("a".into(), 1), ("c".into(), 3)]
        );
    }

    #[test]
    fn cpu_stat_v1_and_v2() {
        let v1 = parse_flat_keyed(
            "nr_periods 120\nnr_throttled 7\nthrottled_time 350123456\nnr_bursts 0\nburst_time 0\n",
        );
        assert_eq!(
            throttling(&v1),
            Throttling {
                periods: 120,
                throttled_periods: 7,
                throttled_time: 350123456
            }
        );
        let v2 = parse_flat_keyed(
            "usage_usec 3965469357\nuser_usec 3299968062\nsystem_usec 665501295\n\
             core_sched.force_idle_usec 0\nnr_periods 52\nnr_throttled 3\n\
             throttled_usec 12345\nnr_bursts 0\nburst_usec 0\n",
        );
        assert_eq!(
            throttling(&v2),
            Throttling {
                periods: 52,
                throttled_periods: 3,
                throttled_time: 12_345_000
            }
        );
        assert_eq!(throttling(&BTreeMap::new()), Throttling::default());
    }

    #[test]
    fn cpuacct_files() {
        assert_eq!(
            parse_cpuacct_stat("user 334546\nsystem 67467\n"),
            (3_345_460_000_000, 674_670_000_000)
        );
        assert_eq!(
            parse_percpu("1900770351031 2119374471915 \n"),
            Some(vec![1900770351031, 2119374471915])
        );
        assert_eq!(parse_percpu("1 x"), None);
    }

    #[test]
    fn cpuacct_usage_all() {
        let text = "cpu user system\n0 700 300\n1 5 0\n";
        assert_eq!(
            parse_usage_all(text),
            Some(UsageAll {
                percpu: vec![1000, 5],
                user: 705,
                system: 300
            })
        );
        assert_eq!(
            parse_usage_all("cpu user system\n"),
            Some(UsageAll {
                percpu: vec![],
                user: 0,
                system: 0
            })
        );
        assert_eq!(parse_usage_all("0 1 2\n"), None);
        assert_eq!(parse_usage_all("cpu user system\n0 1\n"), None);
        assert_eq!(parse_usage_all("cpu user system\n0 1 x\n"), None);
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit("max\n"), Ok(None));
        assert_eq!(parse_limit("104857600\n"), Ok(Some(104857600)));
        assert_eq!(parse_limit("lots"), Err(()));
    }

    #[test]
    fn v1_blkio_files() {
        let text = "8:0 Read 1310720
8:0 Write 40960
8:0 Sync 1351680
8:0 Async 0
8:0 Discard 0
8:0 Total 1351680
253:1 Read 4096
253:1 Write 0
253:1 Sync 4096
253:1 Async 0
253:1 Discard 0
253:1 Total 4096
Total 1355776
";
        let e = parse_v1_blkio(text).unwrap();
        assert_eq!(e.len(), 12);
        assert_eq!(
            e[0],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Read".into(),
                value: 1310720
            }
        );
        assert_eq!(e[6].major, 253);
        assert_eq!(e[6].minor, 1);
        assert_eq!(parse_v1_blkio("Total 0\n"), Some(vec![]));
        assert_eq!(parse_v1_blkio("8:0 Read\n"), None);
        assert_eq!(parse_v1_blkio("sda Read 1\n"), None);
    }

    #[test]
    fn v2_io_stat() {
        let text = "259:0 rbytes=110592 wbytes=4096 rios=27 wios=1 dbytes=0 dios=0
8:16 rbytes=0 wbytes=1048576 rios=0 wios=256 dbytes=512 dios=1 cost.vrate=100.00
";
        let s = parse_io_stat(text).unwrap();
        let e = |major, minor, op: &str, value| BlkioEntry {
            major,
            minor,
            op: op.into(),
            value,
        };
        assert_eq!(
            s.io_service_bytes_recursive,
            [
                e(259, 0, "read", 110592),
                e(259, 0, "write", 4096),
                e(8, 16, "read", 0),
                e(8, 16, "write", 1048576)
            ]
        );
        assert_eq!(
            s.io_serviced_recursive,
            [
                e(259, 0, "read", 27),
                e(259, 0, "write", 1),
                e(8, 16, "read", 0),
                e(8, 16, "write", 256)
            ]
        );
        assert_eq!(parse_io_stat(""), Some(BlkioStats::default()));
        assert_eq!(parse_io_stat("8:0 rbytes\n"), None);
    }
}

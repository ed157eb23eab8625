//! `docker stats`: samples of a container's cgroup, `/proc/stat` and
//! network counters, in the shape of Docker's stats JSON.
//!
//! Streams share one tick a second ([`StatsHub`], as dockerd's stats
//! collector): each tick reads the host's files once and every followed
//! container's files, kept open between ticks, then hands each stream the
//! new sample; the stream writes it out with its own previous sample as
//! `precpu_stats`. A sample is serialized straight from typed structs.

use std::collections::HashMap;
use std::fs::File;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use berth_runtime::cgroups::{self, Hierarchy, HostReader, HostSample, Stats, StatsReader};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use tokio::sync::watch;

use super::container::{Container, ZERO_TIME};

/// How often streams get a sample.
const INTERVAL: Duration = Duration::from_secs(1);

/// A stream skips a tick's sample this soon after its previous one (its
/// first sample is taken on the spot, at any point between ticks): over a
/// shorter gap `/proc/stat`'s 10 ms ticks make the CPU % jumpy.
const MIN_GAP: Duration = Duration::from_millis(500);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One sample of one container.
#[derive(Debug, Clone)]
struct Sample {
    /// `read`: when it was taken (RFC 3339); [`ZERO_TIME`] when the
    /// container is not running.
    read: String,
    /// When it was taken.
    at: Instant,
    /// `/<name>`.
    name: String,
    /// The container's ID.
    id: String,
    /// `None` when the container is not running (Docker's zero sample).
    running: Option<Running>,
}

#[derive(Debug, Clone)]
struct Running {
    stats: Stats,
    host: HostSample,
    networks: Vec<(String, NetDev)>,
}

/// One interface's counters, as Docker's `networks` entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
struct NetDev {
    rx_bytes: u64,
    rx_packets: u64,
    rx_errors: u64,
    rx_dropped: u64,
    tx_bytes: u64,
    tx_packets: u64,
    tx_errors: u64,
    tx_dropped: u64,
}

/// The open files of one running container: its cgroup's stats files and
/// its network namespace's `/proc/<pid>/net/dev`.
#[derive(Debug)]
struct Readers {
    /// The process they were opened for (a restart makes a new cgroup
    /// and maybe a new network namespace).
    pid: i64,
    cgroup: Option<StatsReader>,
    net_dev: Option<File>,
    /// The container's limits when the cgroup's were last read.
    limits: Limits,
}

/// A container's memory, pids and CPU quota limits as configured (`update`
/// changes them).
type Limits = (i64, Option<i64>, i64, i64);

impl Readers {
    fn open(cgroup_path: &str, pid: i64, limits: Limits) -> Readers {
        let cgroup = Hierarchy::detect()
            .stats_reader(cgroup_path)
            .inspect_err(|e| tracing::debug!("stats of {cgroup_path}: {e}"))
            .ok();
        Readers {
            pid,
            cgroup,
            net_dev: File::open(format!("/proc/{pid}/net/dev")).ok(),
            limits,
        }
    }

    /// Reads both; a failure reads as zeros, and the files are opened
    /// afresh next time. The limits are read again when `limits` (the
    /// container's, as configured) differ from the last call's.
    /// `buf` is the scratch space of the reads.
    fn read(
        &mut self,
        cgroup_path: &str,
        limits: Limits,
        buf: &mut Vec<u8>,
    ) -> (Stats, Vec<(String, NetDev)>) {
        if self.limits != limits {
            self.limits = limits;
            if let Some(c) = &mut self.cgroup {
                c.refresh_limits();
            }
        }
        let stats = match self.cgroup.as_mut().map(|c| c.read_with(buf)) {
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                tracing::debug!("stats of {cgroup_path}: {e}");
                self.cgroup = None;
                Stats::default()
            }
            None => Stats::default(),
        };
        let networks = match &self.net_dev {
            Some(f) => match cgroups::read_afresh(f, buf) {
                Ok(text) => parse_net_dev(text),
                Err(_) => {
                    self.net_dev = None;
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        (stats, networks)
    }

    /// Whether they need opening again for the container's process now.
    fn stale(&self, pid: i64) -> bool {
        self.pid != pid || self.cgroup.is_none()
    }
}

/// Samples one container, keeping its files open between calls.
#[derive(Debug)]
struct Sampler {
    container: Arc<Container>,
    cgroup_path: String,
    readers: Option<Readers>,
}

impl Sampler {
    /// A sampler of `c`, whose cgroup is `cgroup_path`.
    fn new(c: Arc<Container>, cgroup_path: String) -> Sampler {
        Sampler {
            container: c,
            cgroup_path,
            readers: None,
        }
    }

    /// A sample now; `host` is the host's side read at the same moment.
    /// Blocks on file reads (short ones: the kernel generates them).
    fn sample(&mut self, host: HostSample, buf: &mut Vec<u8>) -> Sample {
        let (running, pid, name, limits) = {
            let r = self.container.rec();
            (
                r.state.status.is_active(),
                r.state.pid,
                format!("/{}", r.name),
                (
                    r.host_config.memory,
                    r.host_config.pids_limit,
                    r.host_config.nano_cpus,
                    r.host_config.cpu_quota,
                ),
            )
        };
        let id = self.container.id.clone();
        if !running {
            // Let go of the cgroup and the network namespace.
            self.readers = None;
            return Sample {
                read: ZERO_TIME.into(),
                at: Instant::now(),
                name,
                id,
                running: None,
            };
        }
        if self.readers.as_ref().is_none_or(|r| r.stale(pid)) {
            self.readers = Some(Readers::open(&self.cgroup_path, pid, limits));
        }
        let (stats, networks) = match &mut self.readers {
            Some(r) => r.read(&self.cgroup_path, limits, buf),
            None => Default::default(),
        };
        Sample {
            read: super::now_rfc3339(),
            at: Instant::now(),
            name,
            id,
            running: Some(Running {
                stats,
                host,
                networks,
            }),
        }
    }
}

/// The container followed by one or more streams.
#[derive(Debug)]
struct Feed {
    sampler: Mutex<Sampler>,
    tx: watch::Sender<Option<Arc<Sample>>>,
}

#[derive(Debug, Default)]
struct HubState {
    /// By container ID.
    feeds: HashMap<String, Arc<Feed>>,
    /// Whether the tick task runs.
    ticking: bool,
}

/// The shared tick of streaming stats (see the module doc).
#[derive(Debug)]
pub struct StatsHub {
    state: Mutex<HubState>,
    host: Mutex<HostReader>,
}

impl Default for StatsHub {
    fn default() -> StatsHub {
        StatsHub {
            state: Mutex::default(),
            host: Mutex::new(HostReader::open()),
        }
    }
}

/// A stream's subscription: its first sample, taken on the spot, then the
/// ticks' samples.
#[derive(Debug)]
pub struct Subscription {
    first: Option<Arc<Sample>>,
    rx: watch::Receiver<Option<Arc<Sample>>>,
    prev: Option<Arc<Sample>>,
}

impl Subscription {
    /// The next stats line (JSON and a newline), its `precpu_stats` the
    /// sample before; `None` once the hub is gone.
    pub async fn next_line(&mut self) -> Option<Vec<u8>> {
        let cur = match self.first.take() {
            Some(s) => s,
            None => loop {
                self.rx.changed().await.ok()?;
                let Some(s) = self.rx.borrow_and_update().clone() else {
                    continue;
                };
                if self.prev.as_ref().is_none_or(|p| s.at >= p.at + MIN_GAP) {
                    break s;
                }
            },
        };
        let line = json_line(&cur, self.prev.as_deref());
        self.prev = Some(cur);
        Some(line)
    }
}

impl StatsHub {
    /// Follows `c` (cgroup `cgroup_path`) until the subscription is
    /// dropped; starts the tick when it is the first stream.
    pub async fn subscribe(
        self: &Arc<Self>,
        c: &Arc<Container>,
        cgroup_path: String,
    ) -> Subscription {
        let (feed, rx) = {
            let mut st = lock(&self.state);
            let feed = st
                .feeds
                .entry(c.id.clone())
                .or_insert_with(|| {
                    Arc::new(Feed {
                        sampler: Mutex::new(Sampler::new(Arc::clone(c), cgroup_path)),
                        tx: watch::Sender::new(None),
                    })
                })
                .clone();
            let rx = feed.tx.subscribe();
            if !st.ticking {
                st.ticking = true;
                tokio::spawn(Arc::clone(self).tick());
            }
            (feed, rx)
        };
        let hub = Arc::clone(self);
        let first = tokio::task::spawn_blocking(move || {
            let host = lock(&hub.host).read();
            lock(&feed.sampler).sample(host, &mut Vec::new())
        })
        .await
        .ok()
        .map(Arc::new);
        Subscription {
            first,
            rx,
            prev: None,
        }
    }

    /// Samples every followed container once a second; drops feeds
    /// nobody reads and ends when none is left.
    async fn tick(self: Arc<Self>) {
        let mut interval = tokio::time::interval(INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval.tick().await;
        loop {
            interval.tick().await;
            let feeds: Vec<Arc<Feed>> = {
                let mut st = lock(&self.state);
                st.feeds.retain(|_, f| f.tx.receiver_count() > 0);
                if st.feeds.is_empty() {
                    st.ticking = false;
                    return;
                }
                st.feeds.values().cloned().collect()
            };
            let hub = Arc::clone(&self);
            let samples = tokio::task::spawn_blocking(move || {
                let host = lock(&hub.host).read();
                let mut buf = Vec::new();
                feeds
                    .into_iter()
                    .map(|f| {
                        let s = lock(&f.sampler).sample(host, &mut buf);
                        (f, s)
                    })
                    .collect::<Vec<_>>()
            })
            .await;
            // Handed out together, from a worker: the streams wake in one
            // batch rather than one worker wake-up per sample while the
            // next container's files are read.
            match samples {
                Ok(samples) => {
                    for (f, s) in samples {
                        f.tx.send_replace(Some(Arc::new(s)));
                    }
                }
                Err(e) => tracing::error!("stats tick: {e}"),
            }
        }
    }
}

/// Reads the host's side of a sample (for a one-off sample).
fn host_sample() -> HostSample {
    HostReader::open().read()
}

/// A stats line: `cur` as Docker's stats JSON with `prev` as its
/// `preread`/`precpu_stats`, then a newline.
fn json_line(cur: &Sample, prev: Option<&Sample>) -> Vec<u8> {
    let json = StatsJson::new(cur, prev);
    // A running container's line is 2-3 KB on cgroup v1.
    let mut out = Vec::with_capacity(4096);
    // Serializing plain structs and maps to memory cannot fail.
    let _ = serde_json::to_writer(&mut out, &json);
    out.push(b'\n');
    out
}

// ---- Docker's stats JSON (api/types/container StatsResponse) ----

#[derive(Serialize)]
struct StatsJson<'a> {
    read: &'a str,
    preread: &'a str,
    pids_stats: PidsJson,
    blkio_stats: BlkioJson<'a>,
    num_procs: u32,
    storage_stats: Empty,
    cpu_stats: CpuJson<'a>,
    precpu_stats: CpuJson<'a>,
    memory_stats: MemoryJson<'a>,
    name: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    networks: Option<NetworksJson<'a>>,
}

impl<'a> StatsJson<'a> {
    fn new(cur: &'a Sample, prev: Option<&'a Sample>) -> StatsJson<'a> {
        let r = cur.running.as_ref();
        StatsJson {
            read: &cur.read,
            preread: prev.map_or(ZERO_TIME, |p| p.read.as_str()),
            pids_stats: r.map_or_else(PidsJson::default, PidsJson::new),
            blkio_stats: r.map_or_else(BlkioJson::default, BlkioJson::new),
            num_procs: 0,
            storage_stats: Empty {},
            cpu_stats: CpuJson::new(r),
            precpu_stats: CpuJson::new(prev.and_then(|p| p.running.as_ref())),
            memory_stats: r.map_or_else(MemoryJson::default, MemoryJson::new),
            name: &cur.name,
            id: &cur.id,
            networks: r
                .filter(|r| !r.networks.is_empty())
                .map(|r| NetworksJson(&r.networks)),
        }
    }
}

#[derive(Serialize)]
struct Empty {}

#[derive(Default, Serialize)]
struct PidsJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    current: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u64>,
}

impl PidsJson {
    fn new(r: &Running) -> PidsJson {
        PidsJson {
            current: Some(r.stats.pids.current),
            limit: r.stats.pids.limit,
        }
    }
}

/// The lists Docker fills on cgroup v1; only the first two are read.
#[derive(Default, Serialize)]
struct BlkioJson<'a> {
    io_service_bytes_recursive: Option<BlkioList<'a>>,
    io_serviced_recursive: Option<BlkioList<'a>>,
    io_queue_recursive: Option<()>,
    io_service_time_recursive: Option<()>,
    io_wait_time_recursive: Option<()>,
    io_merged_recursive: Option<()>,
    io_time_recursive: Option<()>,
    sectors_recursive: Option<()>,
}

impl<'a> BlkioJson<'a> {
    fn new(r: &'a Running) -> BlkioJson<'a> {
        BlkioJson {
            io_service_bytes_recursive: Some(BlkioList(&r.stats.blkio.io_service_bytes_recursive)),
            io_serviced_recursive: Some(BlkioList(&r.stats.blkio.io_serviced_recursive)),
            ..BlkioJson::default()
        }
    }
}

struct BlkioList<'a>(&'a [berth_runtime::cgroups::BlkioEntry]);

impl Serialize for BlkioList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Entry<'a> {
            major: u64,
            minor: u64,
            op: &'a str,
            value: u64,
        }
        s.collect_seq(self.0.iter().map(|e| Entry {
            major: e.major,
            minor: e.minor,
            op: &e.op,
            value: e.value,
        }))
    }
}

#[derive(Serialize)]
struct CpuJson<'a> {
    cpu_usage: CpuUsageJson<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_cpu_usage: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    online_cpus: Option<u32>,
    throttling_data: ThrottlingJson,
}

#[derive(Serialize)]
struct CpuUsageJson<'a> {
    total_usage: u64,
    #[serde(skip_serializing_if = "<[u64]>::is_empty")]
    percpu_usage: &'a [u64],
    usage_in_kernelmode: u64,
    usage_in_usermode: u64,
}

#[derive(Default, Serialize)]
struct ThrottlingJson {
    periods: u64,
    throttled_periods: u64,
    throttled_time: u64,
}

impl<'a> CpuJson<'a> {
    /// Zeros (Docker's values for "no sample") when `r` is `None`.
    fn new(r: Option<&'a Running>) -> CpuJson<'a> {
        let Some(r) = r else {
            return CpuJson {
                cpu_usage: CpuUsageJson {
                    total_usage: 0,
                    percpu_usage: &[],
                    usage_in_kernelmode: 0,
                    usage_in_usermode: 0,
                },
                system_cpu_usage: None,
                online_cpus: None,
                throttling_data: ThrottlingJson::default(),
            };
        };
        let c = &r.stats.cpu;
        CpuJson {
            cpu_usage: CpuUsageJson {
                total_usage: c.total_usage,
                percpu_usage: &c.percpu_usage,
                usage_in_kernelmode: c.usage_in_kernelmode,
                usage_in_usermode: c.usage_in_usermode,
            },
            system_cpu_usage: Some(r.host.system_cpu_usage),
            online_cpus: Some(r.host.online_cpus),
            throttling_data: ThrottlingJson {
                periods: c.throttling.periods,
                throttled_periods: c.throttling.throttled_periods,
                throttled_time: c.throttling.throttled_time,
            },
        }
    }
}

/// `{}` when the container is not running.
#[derive(Default, Serialize)]
struct MemoryJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_usage: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stats: Option<&'a berth_runtime::cgroups::KeyedValues>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failcnt: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u64>,
}

impl<'a> MemoryJson<'a> {
    fn new(r: &'a Running) -> MemoryJson<'a> {
        let m = &r.stats.memory;
        // Docker reports the machine's memory for no limit or a bigger one.
        let limit = match (m.limit, r.host.machine_memory) {
            (Some(l), Some(total)) => l.min(total),
            (Some(l), None) => l,
            (None, total) => total.unwrap_or(0),
        };
        MemoryJson {
            usage: Some(m.usage),
            max_usage: m.max_usage,
            stats: Some(&m.stats),
            failcnt: m.failcnt,
            limit: Some(limit),
        }
    }
}

struct NetworksJson<'a>(&'a [(String, NetDev)]);

impl Serialize for NetworksJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (name, counters) in self.0 {
            m.serialize_entry(name, counters)?;
        }
        m.end()
    }
}

/// The interfaces of a `/proc/<pid>/net/dev`, loopback left out (as
/// Docker does).
fn parse_net_dev(text: &str) -> Vec<(String, NetDev)> {
    let mut out = Vec::new();
    'lines: for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let mut n = [0u64; 16];
        let mut fields = rest.split_ascii_whitespace();
        for slot in &mut n {
            match fields.next().and_then(|f| f.parse().ok()) {
                Some(v) => *slot = v,
                None => continue 'lines,
            }
        }
        out.push((
            name.to_string(),
            NetDev {
                rx_bytes: n[0],
                rx_packets: n[1],
                rx_errors: n[2],
                rx_dropped: n[3],
                tx_bytes: n[8],
                tx_packets: n[9],
                tx_errors: n[10],
                tx_dropped: n[11],
            },
        ));
    }
    out
}

impl super::Daemon {
    /// A streaming `stats` of `c`: a sample now, then one a second.
    pub async fn stats_stream(&self, c: &Arc<Container>) -> Subscription {
        self.stats.subscribe(c, self.cgroup_path(&c.id)).await
    }

    /// `stats?stream=0`: one line, with a sample of a second before as
    /// `precpu_stats` (Docker's CLI computes CPU % from the two) unless
    /// `one_shot` or the container is not running.
    pub async fn stats_once(&self, c: &Arc<Container>, one_shot: bool) -> Vec<u8> {
        let mut sampler = Sampler::new(Arc::clone(c), self.cgroup_path(&c.id));
        let take = |mut s: Sampler| async move {
            tokio::task::spawn_blocking(move || {
                let sample = s.sample(host_sample(), &mut Vec::new());
                (s, sample)
            })
            .await
            .ok()
        };
        let Some((s, first)) = take(sampler).await else {
            return Vec::new();
        };
        if one_shot || first.running.is_none() {
            return json_line(&first, None);
        }
        sampler = s;
        tokio::time::sleep(INTERVAL).await;
        match take(sampler).await {
            Some((_, second)) => json_line(&second, Some(&first)),
            None => json_line(&first, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_runtime::cgroups::{BlkioEntry, CpuStats, MemoryStats, PidsStats, Throttling};
    use serde_json::{json, Value};

    fn running() -> Sample {
        let stats = Stats {
            cpu: CpuStats {
                total_usage: 3000,
                percpu_usage: vec![1000, 2000],
                usage_in_kernelmode: 100,
                usage_in_usermode: 200,
                throttling: Throttling {
                    periods: 4,
                    throttled_periods: 1,
                    throttled_time: 50,
                },
            },
            memory: MemoryStats {
                usage: 4096,
                max_usage: Some(8192),
                failcnt: Some(0),
                limit: None,
                stats: [("total_inactive_file", 1024)].into_iter().collect(),
            },
            pids: PidsStats {
                current: 2,
                limit: Some(50),
            },
            blkio: berth_runtime::cgroups::BlkioStats {
                io_service_bytes_recursive: vec![BlkioEntry {
                    major: 8,
                    minor: 0,
                    op: "Read".into(),
                    value: 512,
                }],
                io_serviced_recursive: vec![],
            },
        };
        Sample {
            read: "2026-01-01T00:00:01Z".into(),
            at: Instant::now(),
            name: "/web".into(),
            id: "abc".into(),
            running: Some(Running {
                stats,
                host: HostSample {
                    system_cpu_usage: 9_000_000,
                    online_cpus: 2,
                    machine_memory: Some(1 << 30),
                },
                networks: vec![(
                    "eth0".into(),
                    NetDev {
                        rx_bytes: 10,
                        tx_bytes: 20,
                        ..NetDev::default()
                    },
                )],
            }),
        }
    }

    fn parse(line: &[u8]) -> Value {
        assert_eq!(line.last(), Some(&b'\n'));
        serde_json::from_slice(line).unwrap()
    }

    #[test]
    fn running_sample_has_dockers_shape() {
        let first = running();
        let v = parse(&json_line(&first, None));
        let zero_cpu = json!({"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                              "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}});
        assert_eq!(v["precpu_stats"], zero_cpu);
        assert_eq!(v["preread"], ZERO_TIME);
        let mut second = running();
        second.read = "2026-01-01T00:00:02Z".into();
        let v = parse(&json_line(&second, Some(&first)));
        assert_eq!(
            v,
            json!({
                "read": "2026-01-01T00:00:02Z", "preread": "2026-01-01T00:00:01Z",
                "pids_stats": {"current": 2, "limit": 50},
                "blkio_stats": {"io_service_bytes_recursive": [{"major": 8, "minor": 0, "op": "Read", "value": 512}],
                                "io_serviced_recursive": [], "io_queue_recursive": null,
                                "io_service_time_recursive": null, "io_wait_time_recursive": null,
                                "io_merged_recursive": null, "io_time_recursive": null, "sectors_recursive": null},
                "num_procs": 0, "storage_stats": {},
                "cpu_stats": {"cpu_usage": {"total_usage": 3000, "percpu_usage": [1000, 2000],
                                            "usage_in_kernelmode": 100, "usage_in_usermode": 200},
                              "system_cpu_usage": 9_000_000, "online_cpus": 2,
                              "throttling_data": {"periods": 4, "throttled_periods": 1, "throttled_time": 50}},
                "precpu_stats": v["cpu_stats"].clone(),
                "memory_stats": {"usage": 4096, "max_usage": 8192, "stats": {"total_inactive_file": 1024},
                                 "failcnt": 0, "limit": 1u64 << 30},
                "name": "/web", "id": "abc",
                "networks": {"eth0": {"rx_bytes": 10, "rx_packets": 0, "rx_errors": 0, "rx_dropped": 0,
                                      "tx_bytes": 20, "tx_packets": 0, "tx_errors": 0, "tx_dropped": 0}},
            })
        );
    }

    #[test]
    fn stopped_sample_is_dockers_zero_sample() {
        let mut s = running();
        s.running = None;
        s.read = ZERO_TIME.into();
        let v = parse(&json_line(&s, None));
        let zero_cpu = json!({"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                              "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}});
        let nulls = json!({"io_service_bytes_recursive": null, "io_serviced_recursive": null,
                           "io_queue_recursive": null, "io_service_time_recursive": null,
                           "io_wait_time_recursive": null, "io_merged_recursive": null,
                           "io_time_recursive": null, "sectors_recursive": null});
        assert_eq!(
            v,
            json!({"read": ZERO_TIME, "preread": ZERO_TIME, "pids_stats": {}, "blkio_stats": nulls,
                   "num_procs": 0, "storage_stats": {}, "cpu_stats": zero_cpu, "precpu_stats": zero_cpu,
                   "memory_stats": {}, "name": "/web", "id": "abc"})
        );
    }

    #[test]
    fn memory_limit_is_capped_at_the_machines() {
        let mut s = running();
        let r = s.running.as_mut().unwrap();
        r.stats.memory.limit = Some(64 << 20);
        assert_eq!(
            parse(&json_line(&s, None))["memory_stats"]["limit"],
            64 << 20
        );
        s.running.as_mut().unwrap().stats.memory.limit = Some(1 << 40);
        assert_eq!(
            parse(&json_line(&s, None))["memory_stats"]["limit"],
            1u64 << 30
        );
    }

    #[test]
    fn net_dev_leaves_out_loopback_and_junk() {
        let text = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0:    1296      16    1    2    0     0          0         0      656       8    3    4    0     0       0          0
  bad0: 1 2 3
";
        let n = parse_net_dev(text);
        assert_eq!(
            n,
            [(
                "eth0".to_string(),
                NetDev {
                    rx_bytes: 1296,
                    rx_packets: 16,
                    rx_errors: 1,
                    rx_dropped: 2,
                    tx_bytes: 656,
                    tx_packets: 8,
                    tx_errors: 3,
                    tx_dropped: 4,
                }
            )]
        );
    }
}

//! [`StatsReader`] and [`HostReader`]: the files `docker stats` samples,
//! opened once and re-read in place (`pread` at offset 0, which makes the
//! kernel generate the contents afresh). A stream samples a dozen files a
//! second per container; resolving each path every time cost more than
//! reading it.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::stats::{
    self, BlkioStats, CpuStats, KeyedParser, MemoryStats, PidsStats, Stats, Throttling,
};
use super::{existing_dir, CgroupError};

/// Room left in the buffer after a short read that shows the file ended.
const SHORT_READ_ROOM: usize = 1024;

/// The most a read may return and still end the file early: a file made of
/// many records (`/proc/<pid>/net/dev`) comes a page at a time, less the
/// part of a record that did not fit, so a read well under a page with
/// room to spare is its last; files made in one block (cgroup files,
/// `/proc/stat`) come whole in one read.
const SHORT_READ_MAX: usize = 2048;

/// The whole of an open cgroup or `/proc` file, generated afresh by the
/// kernel (`pread` from offset 0), into `buf`.
pub fn read_afresh<'a>(file: &File, buf: &'a mut Vec<u8>) -> std::io::Result<&'a str> {
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize((buf.len() * 2).max(4096), 0);
        }
        match file.read_at(&mut buf[len..], len as u64) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                // A short read with room to spare, of less than half a
                // page, is the end (see SHORT_READ_MAX): the read that
                // would return 0 is saved.
                if n < SHORT_READ_MAX && buf.len() - len >= SHORT_READ_ROOM {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    std::str::from_utf8(&buf[..len]).map_err(|e| std::io::Error::new(ErrorKind::InvalidData, e))
}

/// An open file and its path (for errors).
#[derive(Debug)]
struct Open {
    file: File,
    path: PathBuf,
}

impl Open {
    /// Opens `path`; `None` when it does not exist (a controller or file
    /// this kernel or cgroup lacks).
    fn optional(path: PathBuf) -> Result<Option<Open>, CgroupError> {
        match File::open(&path) {
            Ok(file) => Ok(Some(Open { file, path })),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CgroupError::Read { path, source }),
        }
    }

    /// The whole file, read afresh into `buf`.
    fn read<'a>(&self, buf: &'a mut Vec<u8>) -> Result<&'a str, CgroupError> {
        read_afresh(&self.file, buf).map_err(|source| CgroupError::Read {
            path: self.path.clone(),
            source,
        })
    }

    fn parse_error(&self, text: &str) -> CgroupError {
        super::parse_error(&self.path, text)
    }

    fn u64(&self, buf: &mut Vec<u8>) -> Result<u64, CgroupError> {
        let text = self.read(buf)?;
        text.trim().parse().map_err(|_| self.parse_error(text))
    }

    /// A limit file: a number, or "max" (`None`).
    fn limit(&self, buf: &mut Vec<u8>) -> Result<Option<u64>, CgroupError> {
        let text = self.read(buf)?;
        stats::parse_limit(text).map_err(|()| self.parse_error(text))
    }
}

/// A container's stats files, kept open between samples. Made by
/// [`super::Hierarchy::stats_reader`]; the cgroup's files stop reading
/// (ENODEV) once it is removed, so a restarted container needs a new one.
#[derive(Debug)]
pub struct StatsReader {
    files: Files,
    /// Reused for every file read by [`StatsReader::read`].
    buf: Vec<u8>,
    /// `memory.stat`'s keys, kept between samples.
    mem_stat_keys: KeyedParser,
    /// The memory and pids limits as last read: they change only when the
    /// container is updated, so they are read again only after
    /// [`StatsReader::refresh_limits`].
    limits: Option<Limits>,
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    memory: Option<u64>,
    pids: Option<u64>,
    /// v1 counters that move only under a limit of the cgroup's own, read
    /// with the limits and reused while there is no such limit.
    still: Still,
}

/// `memory.failcnt` counts charges that hit the cgroup's own memory limit
/// and `cpu.stat` the periods of its own CFS quota; without the limit
/// neither moves, so a sample need not read them (two of the nine files a
/// v1 sample reads every second).
#[derive(Debug, Clone, Copy, Default)]
struct Still {
    /// The failcnt read with the limits, when there is no memory limit.
    failcnt: Option<Option<u64>>,
    /// The throttling read with the limits, when there is no CFS quota.
    throttling: Option<Throttling>,
}

#[derive(Debug)]
enum Files {
    V1(V1Files),
    V2(V2Files),
}

/// Missing files (controllers not mounted) leave their part at its default.
#[derive(Debug)]
struct V1Files {
    cpuacct: V1Cpuacct,
    cpu_stat: Option<Open>,
    mem_usage: Option<Open>,
    mem_max_usage: Option<Open>,
    mem_failcnt: Option<Open>,
    mem_limit: Option<Open>,
    /// `cpu.cfs_quota_us`: -1 without a quota.
    cpu_quota: Option<Open>,
    mem_stat: Option<Open>,
    pids_current: Option<Open>,
    pids_max: Option<Open>,
    /// The blkio file pairs there are, in runc's order of preference.
    blkio: Vec<(Open, Option<Open>)>,
}

/// Where the v1 CPU times come from.
#[derive(Debug)]
enum V1Cpuacct {
    /// `cpuacct.usage_all` (Linux 4.7 on): user and system ns per CPU, so
    /// the total, the per-CPU totals and the split in one read.
    All(Open),
    /// Older kernels: `cpuacct.usage`, `.usage_percpu` and `.stat`.
    Split {
        usage: Option<Open>,
        percpu: Option<Open>,
        stat: Option<Open>,
    },
}

#[derive(Debug)]
struct V2Files {
    cpu_stat: Option<Open>,
    mem_current: Option<Open>,
    mem_events: Option<Open>,
    mem_max: Option<Open>,
    mem_stat: Option<Open>,
    pids_current: Option<Open>,
    pids_max: Option<Open>,
    io_stat: Option<Open>,
}

/// runc's choice among the blkio files a kernel may offer: BFQ's, then
/// CFQ's (gone since 5.0), then the throttle ones, which count all I/O; a
/// set is used when its first file has entries. The last set is opened
/// only when the one before is missing: a cgroup's recursive counts
/// include its own, so when they are empty its own are too.
const V1_BLKIO_SETS: [[&str; 2]; 4] = [
    [
        "blkio.bfq.io_service_bytes_recursive",
        "blkio.bfq.io_serviced_recursive",
    ],
    [
        "blkio.io_service_bytes_recursive",
        "blkio.io_serviced_recursive",
    ],
    [
        "blkio.throttle.io_service_bytes_recursive",
        "blkio.throttle.io_serviced_recursive",
    ],
    [
        "blkio.throttle.io_service_bytes",
        "blkio.throttle.io_serviced",
    ],
];

impl StatsReader {
    /// Opens the v1 files of the cgroup `rel` under `root`.
    pub(super) fn open_v1(root: &Path, rel: &Path) -> Result<StatsReader, CgroupError> {
        let dir = |controller: &str| root.join(controller).join(rel);
        let (cpuacct, memory) = (dir("cpuacct"), dir("memory"));
        if !cpuacct.is_dir() && !memory.is_dir() {
            return Err(CgroupError::NotFound { path: memory });
        }
        let (cpu, pids, blkio) = (dir("cpu"), dir("pids"), dir("blkio"));
        let mut blkio_sets = Vec::new();
        let mut recursive_throttle = false;
        for (i, [bytes, serviced]) in V1_BLKIO_SETS.into_iter().enumerate() {
            if i == V1_BLKIO_SETS.len() - 1 && recursive_throttle {
                break;
            }
            if let Some(b) = Open::optional(blkio.join(bytes))? {
                recursive_throttle = i == V1_BLKIO_SETS.len() - 2;
                blkio_sets.push((b, Open::optional(blkio.join(serviced))?));
            }
        }
        let cpuacct = match Open::optional(cpuacct.join("cpuacct.usage_all"))? {
            Some(all) => V1Cpuacct::All(all),
            None => V1Cpuacct::Split {
                usage: Open::optional(cpuacct.join("cpuacct.usage"))?,
                percpu: Open::optional(cpuacct.join("cpuacct.usage_percpu"))?,
                stat: Open::optional(cpuacct.join("cpuacct.stat"))?,
            },
        };
        let files = V1Files {
            cpuacct,
            cpu_stat: Open::optional(cpu.join("cpu.stat"))?,
            cpu_quota: Open::optional(cpu.join("cpu.cfs_quota_us"))?,
            mem_usage: Open::optional(memory.join("memory.usage_in_bytes"))?,
            mem_max_usage: Open::optional(memory.join("memory.max_usage_in_bytes"))?,
            mem_failcnt: Open::optional(memory.join("memory.failcnt"))?,
            mem_limit: Open::optional(memory.join("memory.limit_in_bytes"))?,
            mem_stat: Open::optional(memory.join("memory.stat"))?,
            pids_current: Open::optional(pids.join("pids.current"))?,
            pids_max: Open::optional(pids.join("pids.max"))?,
            blkio: blkio_sets,
        };
        Ok(StatsReader {
            files: Files::V1(files),
            buf: Vec::new(),
            mem_stat_keys: KeyedParser::default(),
            limits: None,
        })
    }

    /// Opens the v2 files of the cgroup directory `dir`.
    pub(super) fn open_v2(dir: &Path) -> Result<StatsReader, CgroupError> {
        let dir = existing_dir(dir.to_path_buf())?;
        let open = |name: &str| Open::optional(dir.join(name));
        let files = V2Files {
            cpu_stat: open("cpu.stat")?,
            mem_current: open("memory.current")?,
            mem_events: open("memory.events")?,
            mem_max: open("memory.max")?,
            mem_stat: open("memory.stat")?,
            pids_current: open("pids.current")?,
            pids_max: open("pids.max")?,
            io_stat: open("io.stat")?,
        };
        Ok(StatsReader {
            files: Files::V2(files),
            buf: Vec::new(),
            mem_stat_keys: KeyedParser::default(),
            limits: None,
        })
    }

    /// One sample of the cgroup's usage.
    pub fn read(&mut self) -> Result<Stats, CgroupError> {
        let mut buf = std::mem::take(&mut self.buf);
        let stats = self.read_with(&mut buf);
        self.buf = buf;
        stats
    }

    /// [`StatsReader::read`] into the caller's buffer: one buffer for all
    /// the containers of a tick stays in the cache, one each would not.
    pub fn read_with(&mut self, buf: &mut Vec<u8>) -> Result<Stats, CgroupError> {
        let limits = match self.limits {
            Some(l) => l,
            None => {
                let (mem, pids) = match &self.files {
                    Files::V1(f) => (&f.mem_limit, &f.pids_max),
                    Files::V2(f) => (&f.mem_max, &f.pids_max),
                };
                let mut memory = match mem {
                    Some(o) => o.limit(buf)?,
                    None => None,
                };
                if matches!(self.files, Files::V1(_)) {
                    memory = memory.and_then(stats::v1_limit);
                }
                let pids = match pids {
                    Some(o) => o.limit(buf)?,
                    None => None,
                };
                let still = match &self.files {
                    Files::V1(f) => v1_still(f, memory.is_some(), buf)?,
                    Files::V2(_) => Still::default(),
                };
                *self.limits.insert(Limits {
                    memory,
                    pids,
                    still,
                })
            }
        };
        let keys = &mut self.mem_stat_keys;
        match &self.files {
            Files::V1(f) => read_v1(f, limits, buf, keys),
            Files::V2(f) => read_v2(f, limits, buf, keys),
        }
    }

    /// Makes the next [`StatsReader::read`] read the limits again (after
    /// the container's memory, pids or CPU quota were changed).
    pub fn refresh_limits(&mut self) {
        self.limits = None;
    }
}

/// The counters that stand still for now (see [`Still`]): read once
/// here, with the limits.
fn v1_still(f: &V1Files, memory_limit: bool, buf: &mut Vec<u8>) -> Result<Still, CgroupError> {
    let quota_or_unknown = match &f.cpu_quota {
        Some(o) => {
            let text = o.read(buf)?;
            text.trim()
                .parse::<i64>()
                .map_err(|_| o.parse_error(text))?
                >= 0
        }
        // No quota file but a cpu.stat: read it every time, to be safe.
        None => f.cpu_stat.is_some(),
    };
    Ok(Still {
        failcnt: match (&f.mem_failcnt, memory_limit) {
            (_, true) => None,
            (Some(o), false) => Some(Some(o.u64(buf)?)),
            (None, false) => Some(None),
        },
        throttling: if quota_or_unknown {
            None
        } else {
            Some(v1_throttling(f, buf)?)
        },
    })
}

fn v1_throttling(f: &V1Files, buf: &mut Vec<u8>) -> Result<Throttling, CgroupError> {
    Ok(match &f.cpu_stat {
        Some(o) => stats::throttling(&stats::parse_flat_keyed(o.read(buf)?)),
        None => Throttling::default(),
    })
}

fn read_v1(
    f: &V1Files,
    limits: Limits,
    buf: &mut Vec<u8>,
    mem_stat_keys: &mut KeyedParser,
) -> Result<Stats, CgroupError> {
    let u64_opt = |o: &Option<Open>, buf: &mut Vec<u8>| o.as_ref().map(|o| o.u64(buf)).transpose();

    let mut cpu = CpuStats::default();
    match &f.cpuacct {
        V1Cpuacct::All(o) => {
            let text = o.read(buf)?;
            let all = stats::parse_usage_all(text).ok_or_else(|| o.parse_error(text))?;
            cpu.percpu_usage = all.percpu;
            cpu.total_usage = cpu.percpu_usage.iter().sum();
            cpu.usage_in_usermode = all.user;
            cpu.usage_in_kernelmode = all.system;
        }
        V1Cpuacct::Split {
            usage,
            percpu,
            stat,
        } => {
            cpu.total_usage = u64_opt(usage, buf)?.unwrap_or(0);
            if let Some(o) = percpu {
                let text = o.read(buf)?;
                cpu.percpu_usage = stats::parse_percpu(text).ok_or_else(|| o.parse_error(text))?;
            }
            if let Some(o) = stat {
                (cpu.usage_in_usermode, cpu.usage_in_kernelmode) =
                    stats::parse_cpuacct_stat(o.read(buf)?);
            }
        }
    }
    cpu.throttling = match limits.still.throttling {
        Some(t) => t,
        None => v1_throttling(f, buf)?,
    };

    let memory = MemoryStats {
        usage: u64_opt(&f.mem_usage, buf)?.unwrap_or(0),
        max_usage: u64_opt(&f.mem_max_usage, buf)?,
        failcnt: match limits.still.failcnt {
            Some(n) => n,
            None => u64_opt(&f.mem_failcnt, buf)?,
        },
        limit: limits.memory,
        stats: match &f.mem_stat {
            Some(o) => mem_stat_keys.parse(o.read(buf)?),
            None => Default::default(),
        },
    };

    let pids = PidsStats {
        current: u64_opt(&f.pids_current, buf)?.unwrap_or(0),
        limit: limits.pids,
    };

    let entries = |o: &Open, buf: &mut Vec<u8>| -> Result<Vec<_>, CgroupError> {
        let text = o.read(buf)?;
        stats::parse_v1_blkio(text).ok_or_else(|| o.parse_error(text))
    };
    let mut blkio = BlkioStats::default();
    for (bytes, serviced) in &f.blkio {
        let io_service_bytes_recursive = entries(bytes, buf)?;
        if !io_service_bytes_recursive.is_empty() {
            blkio = BlkioStats {
                io_service_bytes_recursive,
                io_serviced_recursive: match serviced {
                    Some(o) => entries(o, buf)?,
                    None => Vec::new(),
                },
            };
            break;
        }
    }

    Ok(Stats {
        cpu,
        memory,
        pids,
        blkio,
    })
}

fn read_v2(
    f: &V2Files,
    limits: Limits,
    buf: &mut Vec<u8>,
    mem_stat_keys: &mut KeyedParser,
) -> Result<Stats, CgroupError> {
    let flat = |o: &Option<Open>, buf: &mut Vec<u8>| -> Result<Option<_>, CgroupError> {
        o.as_ref()
            .map(|o| Ok(stats::parse_flat_keyed(o.read(buf)?)))
            .transpose()
    };

    let mut cpu = CpuStats::default();
    if let Some(m) = flat(&f.cpu_stat, buf)? {
        let us = |k: &str| m.get(k).copied().unwrap_or(0) * 1000;
        cpu.total_usage = us("usage_usec");
        cpu.usage_in_usermode = us("user_usec");
        cpu.usage_in_kernelmode = us("system_usec");
        cpu.throttling = stats::throttling(&m);
    }

    let memory = MemoryStats {
        usage: f
            .mem_current
            .as_ref()
            .map(|o| o.u64(buf))
            .transpose()?
            .unwrap_or(0),
        max_usage: None,
        failcnt: flat(&f.mem_events, buf)?.and_then(|m| m.get("oom").copied()),
        limit: limits.memory,
        stats: match &f.mem_stat {
            Some(o) => mem_stat_keys.parse(o.read(buf)?),
            None => Default::default(),
        },
    };

    let pids = PidsStats {
        current: f
            .pids_current
            .as_ref()
            .map(|o| o.u64(buf))
            .transpose()?
            .unwrap_or(0),
        limit: limits.pids,
    };

    let blkio = match &f.io_stat {
        Some(o) => {
            let text = o.read(buf)?;
            stats::parse_io_stat(text).ok_or_else(|| o.parse_error(text))?
        }
        None => BlkioStats::default(),
    };

    Ok(Stats {
        cpu,
        memory,
        pids,
        blkio,
    })
}

/// The host's side of a stats sample, read once per tick for every
/// container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostSample {
    /// Docker's `system_cpu_usage` (see [`super::system_cpu_usage`]); 0
    /// when `/proc/stat` cannot be read.
    pub system_cpu_usage: u64,
    /// Docker's `online_cpus`; at least 1.
    pub online_cpus: u32,
    /// `MemTotal` in bytes ([`super::machine_memory`]).
    pub machine_memory: Option<u64>,
}

/// `/proc/stat` and `/proc/meminfo`, kept open between samples.
#[derive(Debug)]
pub struct HostReader {
    stat: Option<Open>,
    meminfo: Option<Open>,
    buf: Vec<u8>,
}

impl HostReader {
    /// Opens the files (one that cannot be opened reads as its default).
    pub fn open() -> HostReader {
        HostReader::open_at(Path::new("/proc"))
    }

    fn open_at(proc: &Path) -> HostReader {
        let open = |name: &str| {
            Open::optional(proc.join(name))
                .inspect_err(|e| tracing::warn!("{e}"))
                .ok()
                .flatten()
        };
        HostReader {
            stat: open("stat"),
            meminfo: open("meminfo"),
            buf: Vec::new(),
        }
    }

    /// The host's CPU time, CPU count and memory now.
    pub fn read(&mut self) -> HostSample {
        let (system_cpu_usage, online_cpus) = match &self.stat {
            Some(o) => match o.read(&mut self.buf) {
                Ok(text) => stats::parse_proc_stat(text).unwrap_or((0, 1)),
                Err(e) => {
                    tracing::warn!("{e}");
                    (0, 1)
                }
            },
            None => (0, 1),
        };
        let machine_memory = self
            .meminfo
            .as_ref()
            .and_then(|o| o.read(&mut self.buf).ok())
            .and_then(stats::parse_meminfo_total);
        HostSample {
            system_cpu_usage,
            online_cpus: online_cpus.max(1),
            machine_memory,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_read_afresh_and_in_full() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("f");
        std::fs::write(&path, "1\n").unwrap();
        let o = Open::optional(path.clone()).unwrap().unwrap();
        let mut buf = Vec::new();
        assert_eq!(o.u64(&mut buf).unwrap(), 1);
        // Longer than the first buffer.
        let long = "x".repeat(10_000);
        std::fs::write(&path, &long).unwrap();
        assert_eq!(o.read(&mut buf).unwrap(), long);
        std::fs::write(&path, "max\n").unwrap();
        assert_eq!(o.limit(&mut buf).unwrap(), None);
        assert!(matches!(o.u64(&mut buf), Err(CgroupError::Parse { .. })));
        assert!(Open::optional(t.path().join("none")).unwrap().is_none());
    }

    #[test]
    fn files_of_many_records_are_read_whole_into_a_big_buffer() {
        // A seq file of many records comes a page at a time: a big buffer
        // left from an earlier read must not stop it after the first page.
        let f = File::open("/proc/self/mountinfo").unwrap();
        let mut buf = vec![0; 64 * 1024];
        // Mounts may change between the two reads (other tests): retry.
        let same = (0..5).any(|_| {
            let ours = read_afresh(&f, &mut buf).unwrap().to_string();
            ours == std::fs::read_to_string("/proc/self/mountinfo").unwrap()
        });
        assert!(same);
    }

    /// A v1 hierarchy of plain files under a temporary directory, cgroup `c`.
    fn fake_v1(files: &[(&str, &str)]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for c in ["cpuacct", "memory"] {
            std::fs::create_dir_all(t.path().join(c).join("c")).unwrap();
        }
        for (path, text) in files {
            let p = t.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        t
    }

    #[test]
    fn v1_cpu_times_from_usage_all_or_the_older_files() {
        // (percpu, total, user, kernel) read from these files.
        let cpu = |files: &[(&str, &str)]| {
            let t = fake_v1(files);
            let mut r = StatsReader::open_v1(t.path(), Path::new("c")).unwrap();
            let c = r.read().unwrap().cpu;
            (
                c.percpu_usage,
                c.total_usage,
                c.usage_in_usermode,
                c.usage_in_kernelmode,
            )
        };
        assert_eq!(
            cpu(&[(
                "cpuacct/c/cpuacct.usage_all",
                "cpu user system\n0 70 30\n1 8 2\n"
            )]),
            (vec![100, 10], 110, 78, 32)
        );
        assert_eq!(
            cpu(&[
                ("cpuacct/c/cpuacct.usage", "110\n"),
                ("cpuacct/c/cpuacct.usage_percpu", "100 10 \n"),
                ("cpuacct/c/cpuacct.stat", "user 3\nsystem 1\n"),
            ]),
            (vec![100, 10], 110, 30_000_000, 10_000_000)
        );
    }

    #[test]
    fn v1_blkio_falls_back_to_own_counts_only_without_recursive_ones() {
        let own = "8:0 Read 4096\n8:0 Write 0\nTotal 4096\n";
        // The recursive file is there and empty: the cgroup did no I/O.
        let t = fake_v1(&[
            (
                "blkio/c/blkio.throttle.io_service_bytes_recursive",
                "Total 0\n",
            ),
            ("blkio/c/blkio.throttle.io_service_bytes", own),
        ]);
        let mut r = StatsReader::open_v1(t.path(), Path::new("c")).unwrap();
        assert!(r
            .read()
            .unwrap()
            .blkio
            .io_service_bytes_recursive
            .is_empty());
        // An old kernel without recursive throttle files.
        let t = fake_v1(&[("blkio/c/blkio.throttle.io_service_bytes", own)]);
        let mut r = StatsReader::open_v1(t.path(), Path::new("c")).unwrap();
        assert_eq!(r.read().unwrap().blkio.io_service_bytes_recursive.len(), 2);
    }

    #[test]
    fn limits_are_read_again_only_when_asked() {
        let t = fake_v1(&[
            ("memory/c/memory.limit_in_bytes", "9223372036854771712\n"),
            ("pids/c/pids.max", "max\n"),
        ]);
        let mut r = StatsReader::open_v1(t.path(), Path::new("c")).unwrap();
        let s = r.read().unwrap();
        assert_eq!((s.memory.limit, s.pids.limit), (None, None));
        std::fs::write(
            t.path().join("memory/c/memory.limit_in_bytes"),
            "67108864\n",
        )
        .unwrap();
        std::fs::write(t.path().join("pids/c/pids.max"), "50\n").unwrap();
        let s = r.read().unwrap();
        assert_eq!((s.memory.limit, s.pids.limit), (None, None));
        r.refresh_limits();
        let s = r.read().unwrap();
        assert_eq!((s.memory.limit, s.pids.limit), (Some(64 << 20), Some(50)));
    }

    #[test]
    fn v1_failcnt_and_throttling_are_read_each_time_only_under_a_limit() {
        let stat = |n: u64| format!("nr_periods {n}\nnr_throttled {n}\nthrottled_time {n}\n");
        let t = fake_v1(&[
            ("memory/c/memory.limit_in_bytes", "9223372036854771712\n"),
            ("memory/c/memory.failcnt", "3\n"),
            ("cpu/c/cpu.cfs_quota_us", "-1\n"),
            ("cpu/c/cpu.stat", &stat(5)),
        ]);
        let write = |path: &str, text: &str| std::fs::write(t.path().join(path), text).unwrap();
        let mut r = StatsReader::open_v1(t.path(), Path::new("c")).unwrap();
        let seen = |r: &mut StatsReader| {
            let s = r.read().unwrap();
            (s.memory.failcnt, s.cpu.throttling.throttled_periods)
        };
        assert_eq!(seen(&mut r), (Some(3), 5));
        // Without limits they cannot move: what was read with the limits
        // stands.
        write("memory/c/memory.failcnt", "4\n");
        write("cpu/c/cpu.stat", &stat(6));
        assert_eq!(seen(&mut r), (Some(3), 5));
        // `update --memory --cpus`: read every time from then on.
        write("memory/c/memory.limit_in_bytes", "67108864\n");
        write("cpu/c/cpu.cfs_quota_us", "50000\n");
        r.refresh_limits();
        assert_eq!(seen(&mut r), (Some(4), 6));
        write("memory/c/memory.failcnt", "7\n");
        write("cpu/c/cpu.stat", &stat(8));
        assert_eq!(seen(&mut r), (Some(7), 8));
    }

    #[test]
    fn host_reader_on_this_machine_and_without_proc() {
        let mut h = HostReader::open();
        let a = h.read();
        assert!(a.system_cpu_usage > 0 && a.online_cpus >= 1);
        assert!(a.machine_memory.unwrap() > 1 << 20);
        std::thread::sleep(std::time::Duration::from_millis(30));
        assert!(h.read().system_cpu_usage >= a.system_cpu_usage);
        let t = tempfile::tempdir().unwrap();
        assert_eq!(
            HostReader::open_at(t.path()).read(),
            HostSample {
                system_cpu_usage: 0,
                online_cpus: 1,
                machine_memory: None
            }
        );
    }
}

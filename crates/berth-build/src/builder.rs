//! The executor, Docker's legacy builder model: every step starts from the
//! previous step's image and commits a new one. RUN runs in a container
//! (through the daemon's [`RunBackend`]); COPY/ADD write into an overlay of
//! the parent's layers; the upper dir of either becomes the step's layer.
//! Other instructions only change the config (an empty-layer step).
//!
//! The cache maps a key — parent image ID, the instruction after
//! substitution, the build args a RUN sees, and for COPY/ADD a hash of the
//! names, modes, owners and contents of every source — to the image the
//! step made. Any change to any of these gives another key, so a cached
//! step is never served for different input. Entries are files under
//! `<data-root>/buildcache/`, written atomically; an entry whose image was
//! deleted is a miss.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_api::container::{ContainerConfig, HealthConfig};
use berth_api::{Reference, StrSlice};
use berth_image::mount::{unmount, RootfsDirs};
use berth_image::{CommitRequest, History, ImageConfig, ImageStore, RootFsConfig};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::context::{resolve_sources, ContextDigests, SourceRoot};
use crate::fsutil::{self, CopyOpts};
use crate::parser::{self, Args, Instruction};
use crate::shell;
use crate::BuildError;

/// What a RUN step asks of the daemon.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The parent image ID.
    pub image: String,
    /// The full command (shell included).
    pub cmd: Vec<String>,
    /// Environment: the config's plus the build args in use.
    pub env: Vec<String>,
    /// `USER`.
    pub user: String,
    /// `WORKDIR`.
    pub workdir: String,
    /// `--network` of the build (None: the daemon's default).
    pub network_mode: Option<String>,
}

/// What a finished RUN container left.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Exit code.
    pub exit_code: i64,
}

/// The daemon's container machinery, as a build needs it. Calls are made
/// from a blocking thread.
pub trait RunBackend: Send + Sync {
    /// Creates (does not start) a container; returns its ID.
    fn create(&self, req: &RunRequest) -> Result<String, BuildError>;
    /// Starts it, passes its output on as it comes, waits for its exit.
    fn run(&self, id: &str, output: &mut dyn FnMut(&[u8])) -> Result<RunOutcome, BuildError>;
    /// Its overlay upper dir (valid until removed).
    fn upper_dir(&self, id: &str) -> PathBuf;
    /// Removes it (errors are logged, not returned: nothing can be done).
    fn remove(&self, id: &str);
    /// Pulls `image` (a FROM or `COPY --from` image missing locally, or any
    /// with `--pull`) for `platform`, its progress sent to `out`. A backend
    /// without registries finds nothing.
    fn pull(
        &self,
        image: &str,
        platform: Option<&str>,
        out: &mut dyn FnMut(BuildOutput),
    ) -> Result<(), BuildError> {
        let _ = (platform, out);
        Err(BuildError::NotFound(format!(
            "pull access denied for {image}, repository does not exist or may require 'docker login'"
        )))
    }
}

/// Options of one build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The Dockerfile's text.
    pub dockerfile: String,
    /// The unpacked context.
    pub context: PathBuf,
    /// Digests of the context's files taken as it was unpacked (empty:
    /// each file is hashed when a COPY first needs it).
    pub context_digests: Arc<ContextDigests>,
    /// `-t`.
    pub tags: Vec<Reference>,
    /// `--build-arg` (a name alone takes its value from nowhere: None).
    pub build_args: BTreeMap<String, Option<String>>,
    /// `--target`.
    pub target: Option<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--label`.
    pub labels: BTreeMap<String, String>,
    /// Remove intermediate containers after a successful step (always
    /// after a failed one).
    pub rm: bool,
    /// `--pull`: pull every FROM image even when it is present.
    pub pull: bool,
    /// `--network` for RUN steps.
    pub network_mode: Option<String>,
    /// `--platform` (only the host's can be built).
    pub platform: Option<String>,
}

/// What the build reports, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum BuildOutput {
    /// Text for the client (`{"stream": …}`).
    Stream(String),
    /// The image ID (`{"aux": {"ID": …}}`).
    Aux(String),
    /// A pull's progress message, passed on as is.
    Progress(berth_api::image::JsonMessage),
}

/// Runs builds against an image store.
pub struct Builder {
    images: Arc<ImageStore>,
    backend: Arc<dyn RunBackend>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder").finish_non_exhaustive()
    }
}

/// Build args every build knows without an `ARG` (Docker's list).
const PREDEFINED_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Paths a runtime creates in a container's root as mount points; never
/// part of a RUN layer (Docker keeps them in its init layer).
const MOUNT_POINTS: &[&str] = &[
    "etc/hosts",
    "etc/hostname",
    "etc/resolv.conf",
    "dev",
    "proc",
    "sys",
    ".dockerenv",
];

fn short(id: &str) -> &str {
    let h = id.strip_prefix("sha256:").unwrap_or(id);
    &h[..h.len().min(12)]
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn internal(e: impl std::fmt::Display) -> BuildError {
    BuildError::Internal(e.to_string())
}

/// One stage's state while it builds.
#[derive(Debug, Clone)]
struct Stage {
    /// The current image (None right after `FROM scratch`).
    image: Option<String>,
    config: ImageConfig,
    /// Declared ARGs and their values.
    args: BTreeMap<String, Option<String>>,
    /// CMD set in this stage (an ENTRYPOINT then keeps it).
    cmd_set: bool,
}

impl Stage {
    fn cc(&mut self) -> &mut ContainerConfig {
        self.config
            .config
            .get_or_insert_with(ContainerConfig::default)
    }

    fn env_get(&self, name: &str) -> Option<String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.env.as_ref())
            .and_then(|env| {
                env.iter().rev().find_map(|e| {
                    let (k, v) = e.split_once('=').unwrap_or((e, ""));
                    (k == name).then(|| v.to_string())
                })
            })
    }

    fn lookup(&self, name: &str) -> Option<String> {
        self.env_get(name)
            .or_else(|| self.args.get(name).cloned().flatten())
    }

    fn shell(&self) -> Vec<String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.shell.clone())
            .map(|s| s.0)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    fn workdir(&self) -> String {
        self.config
            .config
            .as_ref()
            .map(|c| c.working_dir.clone())
            .unwrap_or_default()
    }
}

/// A stage of the Dockerfile: its FROM and its instructions.
#[derive(Debug, Clone)]
struct StageDef {
    from: Instruction,
    name: Option<String>,
    body: Vec<Instruction>,
}

/// An overlay of an image's layers with a scratch upper dir, unmounted
/// and removed on drop.
struct WorkRoot {
    dir: PathBuf,
    rootfs: PathBuf,
}

impl WorkRoot {
    fn mount(images: &ImageStore, image: Option<&str>) -> Result<WorkRoot, BuildError> {
        let top = match image {
            Some(id) => images
                .resolve(id)
                .map_err(internal)?
                .row
                .chain_ids
                .last()
                .cloned(),
            None => None,
        };
        let lowers = images.lower_dirs_from(top.as_deref()).map_err(internal)?;
        let dir = images.tmp_dir().join(unique_name("build"));
        let w = WorkRoot {
            rootfs: dir.join("rootfs"),
            dir,
        };
        RootfsDirs {
            lowers,
            upper: w.dir.join("upper"),
            work: w.dir.join("work"),
            target: w.rootfs.clone(),
        }
        .mount()
        .map_err(internal)?;
        Ok(w)
    }

    fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }
}

impl Drop for WorkRoot {
    fn drop(&mut self) {
        let _ = unmount(&self.rootfs);
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A directory under the store's scratch space, removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(parent: &Path, prefix: &str) -> Result<ScratchDir, BuildError> {
        let p = parent.join(unique_name(prefix));
        fs::create_dir_all(&p).map_err(internal)?;
        Ok(ScratchDir(p))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// `prefix-<pid>-<time>-<seq>`: unique among concurrent builds.
fn unique_name(prefix: &str) -> String {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}-{}-{nanos:x}-{seq}", std::process::id())
}

/// Removes a RUN container when dropped.
struct ContainerGuard<'a> {
    backend: &'a dyn RunBackend,
    id: String,
}

impl Drop for ContainerGuard<'_> {
    fn drop(&mut self) {
        self.backend.remove(&self.id);
    }
}

/// Splits a Dockerfile into global ARGs and stages.
fn stages(df: &parser::Dockerfile) -> Result<(Vec<Instruction>, Vec<StageDef>), BuildError> {
    let mut meta = Vec::new();
    let mut out: Vec<StageDef> = Vec::new();
    for i in &df.instructions {
        if i.cmd == "FROM" {
            let words = shell::split_words(&i.raw(), df.escape);
            let name = match words.as_slice() {
                [_] => None,
                [_, as_, n] if as_.eq_ignore_ascii_case("as") => Some(n.to_ascii_lowercase()),
                _ => {
                    return Err(BuildError::Parse {
                        line: i.line,
                        message: "FROM requires either one or three arguments".into(),
                    })
                }
            };
            out.push(StageDef {
                from: i.clone(),
                name,
                body: Vec::new(),
            });
        } else if let Some(s) = out.last_mut() {
            s.body.push(i.clone());
        } else if i.cmd == "ARG" {
            meta.push(i.clone());
        } else {
            return Err(BuildError::Parse {
                line: i.line,
                message: "no build stage in current context".into(),
            });
        }
    }
    if out.is_empty() {
        return Err(BuildError::Parse {
            line: df.instructions.last().map(|i| i.line).unwrap_or(1),
            message: "no build stage in current context".into(),
        });
    }
    Ok((meta, out))
}

impl Builder {
    /// A builder over the daemon's image store and container machinery.
    pub fn new(images: Arc<ImageStore>, backend: Arc<dyn RunBackend>) -> Builder {
        Builder { images, backend }
    }

    fn cache_dir(&self) -> PathBuf {
        self.images.root().join("buildcache")
    }

    fn cache_get(&self, key: &str) -> Option<String> {
        let id = fs::read_to_string(self.cache_dir().join(key)).ok()?;
        let id = id.trim().to_string();
        // An entry whose image was deleted is a miss.
        matches!(self.images.meta().image(&id), Ok(Some(_))).then_some(id)
    }

    fn cache_put(&self, key: &str, id: &str) {
        let dir = self.cache_dir();
        let _ = fs::create_dir_all(&dir);
        let tmp = dir.join(unique_name(&format!(".{key}")));
        if fs::write(&tmp, id).is_ok() {
            let _ = fs::rename(&tmp, dir.join(key));
        }
    }

    /// Forgets every cache entry (`docker builder prune`); returns how
    /// many there were. The images the steps made stay until removed.
    pub fn prune_cache(images: &ImageStore) -> usize {
        let dir = images.root().join("buildcache");
        let n = fs::read_dir(&dir).map(|rd| rd.count()).unwrap_or(0);
        let _ = fs::remove_dir_all(&dir);
        n
    }

    /// Checks a Dockerfile before anything runs: syntax, stages, target.
    pub fn check(opts: &BuildOptions) -> Result<(), BuildError> {
        let df = parser::parse(&opts.dockerfile)?;
        let (_, defs) = stages(&df)?;
        if let Some(t) = opts.target.as_deref().filter(|t| !t.is_empty()) {
            if !defs
                .iter()
                .any(|d| d.name.as_deref() == Some(&t.to_ascii_lowercase()))
            {
                return Err(BuildError::NotFound(format!(
                    "failed to reach build target {t} in Dockerfile"
                )));
            }
        }
        Ok(())
    }

    /// Runs a build; returns the image ID. `out` sees the progress.
    pub fn build(
        &self,
        opts: &BuildOptions,
        out: &mut dyn FnMut(BuildOutput),
    ) -> Result<String, BuildError> {
        let df = parser::parse(&opts.dockerfile)?;
        let escape = df.escape;
        let (meta, mut defs) = stages(&df)?;
        // The target stage ends the build; stages after it are not built.
        let last = match opts.target.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => defs
                .iter()
                .position(|d| d.name.as_deref() == Some(&t.to_ascii_lowercase()))
                .ok_or_else(|| {
                    BuildError::NotFound(format!("failed to reach build target {t} in Dockerfile"))
                })?,
            None => defs.len() - 1,
        };
        defs.truncate(last + 1);
        if !opts.labels.is_empty() {
            // Docker adds --label as a last LABEL step.
            let text: Vec<String> = opts
                .labels
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        serde_json::to_string(k).unwrap_or_default(),
                        serde_json::to_string(v).unwrap_or_default()
                    )
                })
                .collect();
            let text = text.join(" ");
            if let Some(d) = defs.last_mut() {
                d.body.push(Instruction {
                    cmd: "LABEL".into(),
                    flags: Vec::new(),
                    args: Args::Shell(text.clone()),
                    heredocs: Vec::new(),
                    line: 0,
                    original: format!("LABEL {text}"),
                });
            }
        }
        // Stages the target needs: itself and what it names, transitively.
        let needed = needed_stages(&defs, escape);
        let total: usize = meta.len()
            + defs
                .iter()
                .enumerate()
                .filter(|(n, _)| needed.contains(n))
                .map(|(_, d)| 1 + d.body.len())
                .sum::<usize>();
        let mut step = 0usize;
        let mut used_args: HashSet<String> = HashSet::new();

        // Global ARGs: their values are what FROM lines may use.
        let mut global: BTreeMap<String, Option<String>> = BTreeMap::new();
        for a in &meta {
            step += 1;
            out(BuildOutput::Stream(format!(
                "Step {step}/{total} : {}\n",
                a.original
            )));
            let look = |n: &str| global.get(n).cloned().flatten();
            for (name, default) in arg_decls(&a.raw(), escape, &look)? {
                let v = match opts.build_args.get(&name) {
                    Some(v) => {
                        used_args.insert(name.clone());
                        v.clone().or(default)
                    }
                    None => default,
                };
                global.insert(name, v);
            }
        }

        // Stages run in parallel as soon as the stages they name are built;
        // their output reaches the client in stage order (the next one's
        // live, later ones' once it is their turn).
        let order: Vec<usize> = (0..defs.len()).filter(|n| needed.contains(n)).collect();
        let mut first_step = HashMap::new();
        for &n in &order {
            first_step.insert(n, step + 1);
            step += 1 + defs[n].body.len();
        }
        enum Msg {
            Out(BuildOutput),
            Done(Result<HashSet<String>, BuildError>),
        }
        let built: std::sync::Mutex<HashMap<usize, Option<Stage>>> = Default::default();
        let ready = std::sync::Condvar::new();
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Msg)>();
        let outcome: Result<(), BuildError> = std::thread::scope(|sc| {
            for &n in &order {
                let tx = tx.clone();
                let (defs, built, ready, global, first_step) =
                    (&defs, &built, &ready, &global, &first_step);
                sc.spawn(move || {
                    let deps = stage_deps(defs, n, escape);
                    // Wait for the stages this one names; give up if one failed.
                    let results = {
                        let mut g = built.lock().unwrap_or_else(|p| p.into_inner());
                        loop {
                            if deps.iter().any(|d| matches!(g.get(d), Some(None))) {
                                g.insert(n, None);
                                ready.notify_all();
                                let _ = tx.send((n, Msg::Done(Ok(HashSet::new()))));
                                return;
                            }
                            if deps.iter().all(|d| matches!(g.get(d), Some(Some(_)))) {
                                break;
                            }
                            g = ready.wait(g).unwrap_or_else(|p| p.into_inner());
                        }
                        let snapshot: HashMap<usize, Stage> = g
                            .iter()
                            .filter_map(|(k, v)| v.clone().map(|v| (*k, v)))
                            .collect();
                        snapshot
                    };
                    let mut used = HashSet::new();
                    let mut send = |o: BuildOutput| {
                        let _ = tx.send((n, Msg::Out(o)));
                    };
                    let r = self.build_stage(
                        n,
                        defs,
                        &results,
                        first_step[&n],
                        total,
                        opts,
                        escape,
                        global,
                        &mut used,
                        &mut send,
                    );
                    let mut g = built.lock().unwrap_or_else(|p| p.into_inner());
                    let done = match r {
                        Ok(st) => {
                            g.insert(n, Some(st));
                            Ok(used)
                        }
                        Err(e) => {
                            g.insert(n, None);
                            Err(e)
                        }
                    };
                    ready.notify_all();
                    drop(g);
                    let _ = tx.send((n, Msg::Done(done)));
                });
            }
            drop(tx);
            let mut pending: HashMap<usize, Vec<BuildOutput>> = HashMap::new();
            let mut finished: HashMap<usize, Result<HashSet<String>, BuildError>> = HashMap::new();
            let mut idx = 0;
            while idx < order.len() {
                let cur = order[idx];
                for o in pending.remove(&cur).unwrap_or_default() {
                    out(o);
                }
                if let Some(r) = finished.remove(&cur) {
                    used_args.extend(r?);
                    idx += 1;
                    continue;
                }
                match rx.recv() {
                    Ok((k, Msg::Out(o))) if k == cur => out(o),
                    Ok((k, Msg::Out(o))) => pending.entry(k).or_default().push(o),
                    Ok((k, Msg::Done(r))) => {
                        finished.insert(k, r);
                    }
                    Err(_) => return Err(internal("a build stage ended without a result")),
                }
            }
            Ok(())
        });
        outcome?;
        let final_id = order.last().and_then(|n| {
            built
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(n)
                .cloned()
                .flatten()
                .and_then(|s| s.image)
        });
        let id = final_id.ok_or_else(|| internal("no stage was built"))?;
        let unused: Vec<&String> = opts
            .build_args
            .keys()
            .filter(|k| !used_args.contains(*k) && !PREDEFINED_ARGS.contains(&k.as_str()))
            .collect();
        if !unused.is_empty() {
            let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            out(BuildOutput::Stream(format!(
                "[Warning] One or more build-args [{}] were not consumed\n",
                names.join(" ")
            )));
        }
        for t in &opts.tags {
            self.images.tag(&id, t).map_err(internal)?;
        }
        Ok(id)
    }

    /// Builds one stage (`n`) whose named stages are in `results`.
    #[allow(clippy::too_many_arguments)]
    fn build_stage(
        &self,
        n: usize,
        defs: &[StageDef],
        results: &HashMap<usize, Stage>,
        first_step: usize,
        total: usize,
        opts: &BuildOptions,
        escape: char,
        global: &BTreeMap<String, Option<String>>,
        used_args: &mut HashSet<String>,
        out: &mut dyn FnMut(BuildOutput),
    ) -> Result<Stage, BuildError> {
        let def = &defs[n];
        let mut step = first_step;
        out(BuildOutput::Stream(format!(
            "Step {step}/{total} : {}\n",
            def.from.original
        )));
        let look = |name: &str| global.get(name).cloned().flatten();
        let words = shell::split_words(&def.from.raw(), escape);
        let base = shell::expand(&words[0], escape, &look)?;
        let mut st = self.from(&base, &defs[..n], results, opts, out)?;
        match &st.image {
            Some(id) => out(BuildOutput::Stream(format!(" ---> {}\n", short(id)))),
            None => out(BuildOutput::Stream(" ---> \n".into())),
        }
        // ONBUILD triggers of the base image run first.
        let triggers = st
            .config
            .config
            .as_mut()
            .and_then(|c| c.on_build.take())
            .unwrap_or_default();
        if !triggers.is_empty() {
            out(BuildOutput::Stream(format!(
                "# Executing {} build trigger{}\n",
                triggers.len(),
                if triggers.len() == 1 { "" } else { "s" }
            )));
            for t in &triggers {
                let tdf = parser::parse(t)?;
                for ins in &tdf.instructions {
                    if matches!(ins.cmd.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                        return Err(BuildError::Syntax(format!(
                            "{} isn't allowed as an ONBUILD trigger",
                            ins.cmd
                        )));
                    }
                    self.step(
                        &mut st,
                        ins,
                        opts,
                        escape,
                        &defs[..n],
                        results,
                        global,
                        used_args,
                        out,
                    )?;
                }
            }
        }
        for ins in &def.body {
            step += 1;
            out(BuildOutput::Stream(format!(
                "Step {step}/{total} : {}\n",
                ins.original
            )));
            self.step(
                &mut st,
                ins,
                opts,
                escape,
                &defs[..n],
                results,
                global,
                used_args,
                out,
            )?;
        }
        // A stage that made no image yet (FROM scratch alone) gets one.
        if st.image.is_none() {
            self.parent_image(&mut st)?;
        }
        Ok(st)
    }

    /// The state a FROM starts with.
    fn from(
        &self,
        base: &str,
        before: &[StageDef],
        results: &HashMap<usize, Stage>,
        opts: &BuildOptions,
        out: &mut dyn FnMut(BuildOutput),
    ) -> Result<Stage, BuildError> {
        let lower = base.to_ascii_lowercase();
        if let Some(i) = before
            .iter()
            .rposition(|d| d.name.as_deref() == Some(&lower))
        {
            let s = results
                .get(&i)
                .ok_or_else(|| internal(format!("stage {base} was not built")))?;
            return Ok(Stage {
                image: s.image.clone(),
                config: s.config.clone(),
                args: BTreeMap::new(),
                cmd_set: false,
            });
        }
        if lower == "scratch" {
            return Ok(Stage {
                image: None,
                config: ImageConfig {
                    architecture: berth_image::host_arch().into(),
                    os: "linux".into(),
                    config: Some(ContainerConfig::default()),
                    rootfs: RootFsConfig {
                        kind: "layers".into(),
                        diff_ids: Vec::new(),
                    },
                    ..Default::default()
                },
                args: BTreeMap::new(),
                cmd_set: false,
            });
        }
        if base.is_empty() {
            return Err(BuildError::Syntax(
                "base name (FROM) should not be blank".into(),
            ));
        }
        let img = self.image_or_pull(base, opts, out)?;
        let mut config = img.config.clone();
        // Docker's build keeps the parent's config but none of its
        // bookkeeping of how that was built.
        config.container_config = None;
        config.container = None;
        Ok(Stage {
            image: Some(img.id().to_string()),
            config,
            args: BTreeMap::new(),
            cmd_set: false,
        })
    }

    /// A FROM (or `COPY --from`) image: the local one, else pulled, as
    /// Docker's legacy builder does; with `--pull` always pulled first
    /// (an image ID, which names nothing in a registry, stays local).
    fn image_or_pull(
        &self,
        name: &str,
        opts: &BuildOptions,
        out: &mut dyn FnMut(BuildOutput),
    ) -> Result<berth_image::ResolvedImage, BuildError> {
        let pullable = Reference::parse_normalized(name).is_ok();
        if !(opts.pull && pullable) {
            match self.images.resolve(name) {
                Ok(img) => return Ok(img),
                Err(berth_image::ImageError::NotFound(_)) if pullable => {}
                Err(berth_image::ImageError::NotFound(_)) => {
                    return Err(BuildError::NotFound(format!(
                        "pull access denied for {name}, repository does not exist or may require 'docker login': No such image: {name}"
                    )))
                }
                Err(other) => return Err(BuildError::Syntax(other.to_string())),
            }
        }
        self.backend.pull(name, opts.platform.as_deref(), out)?;
        self.images.resolve(name).map_err(internal)
    }

    /// Commits the stage's config (with an optional upper dir) as a new
    /// image and makes it the stage's current image.
    fn commit(
        &self,
        st: &mut Stage,
        upper: Option<&Path>,
        created_by: &str,
        empty_layer: bool,
    ) -> Result<String, BuildError> {
        let t = now();
        let mut config = st.config.clone();
        config.created = Some(t.clone());
        if !created_by.is_empty() {
            config.history.push(History {
                created: Some(t),
                created_by: Some(created_by.to_string()),
                empty_layer,
                ..Default::default()
            });
        }
        let id = self
            .images
            .commit(CommitRequest {
                upper,
                skip: MOUNT_POINTS,
                config,
                parent: st.image.as_deref(),
                tags: &[],
            })
            .map_err(internal)?;
        let img = self.images.resolve(&id).map_err(internal)?;
        st.config = img.config;
        st.image = Some(id.clone());
        Ok(id)
    }

    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        st: &mut Stage,
        ins: &Instruction,
        opts: &BuildOptions,
        escape: char,
        before: &[StageDef],
        results: &HashMap<usize, Stage>,
        global: &BTreeMap<String, Option<String>>,
        used_args: &mut HashSet<String>,
        out: &mut dyn FnMut(BuildOutput),
    ) -> Result<(), BuildError> {
        let raw = ins.raw();
        let line_err = |e: BuildError| match e {
            BuildError::Syntax(m) if ins.line > 0 => {
                BuildError::Syntax(format!("Dockerfile line {}: {} {m}", ins.line, ins.cmd))
            }
            other => other,
        };
        match ins.cmd.as_str() {
            "RUN" => return self.run(st, ins, opts, out),
            "COPY" | "ADD" => {
                return self
                    .copy(st, ins, opts, escape, before, results, out)
                    .map_err(line_err)
            }
            _ => {}
        }
        let snapshot = st.clone();
        let lookup = |n: &str| snapshot.lookup(n);
        // The instruction after substitution is both the history entry
        // and the cache key.
        let mut described = ins.original.clone();
        match ins.cmd.as_str() {
            "ENV" => {
                let kv = shell::key_values(&raw, escape, true, &lookup, "ENV").map_err(line_err)?;
                let env = st.cc().env.get_or_insert_with(Vec::new);
                let mut parts = Vec::new();
                for (k, v) in kv {
                    env.retain(|e| e.split_once('=').map(|(ek, _)| ek).unwrap_or(e) != k);
                    parts.push(format!("{k}={v}"));
                    env.push(format!("{k}={v}"));
                }
                described = format!("ENV {}", parts.join(" "));
            }
            "LABEL" => {
                let kv =
                    shell::key_values(&raw, escape, true, &lookup, "LABEL").map_err(line_err)?;
                let labels = st.cc().labels.get_or_insert_with(BTreeMap::new);
                let mut parts = Vec::new();
                for (k, v) in kv {
                    parts.push(format!("{k}={v}"));
                    labels.insert(k, v);
                }
                described = format!("LABEL {}", parts.join(" "));
            }
            "MAINTAINER" => {
                st.config.author = Some(raw.clone());
            }
            "ARG" => {
                let look = |n: &str| snapshot.lookup(n);
                let decls = arg_decls(&raw, escape, &look).map_err(line_err)?;
                let mut parts = Vec::new();
                for (name, default) in decls {
                    let default = default
                        .or_else(|| global.get(&name).cloned().flatten())
                        .or_else(|| predefined_default(&name));
                    let v = match opts.build_args.get(&name) {
                        Some(v) => {
                            used_args.insert(name.clone());
                            v.clone().or(default)
                        }
                        None => default,
                    };
                    parts.push(match &v {
                        Some(v) => format!("{name}={v}"),
                        None => name.clone(),
                    });
                    st.args.insert(name, v);
                }
                described = format!("ARG {}", parts.join(" "));
            }
            "CMD" | "ENTRYPOINT" => {
                let v = match &ins.args {
                    Args::Json(v) => v.clone(),
                    Args::Shell(s) => {
                        let mut sh = st.shell();
                        sh.push(s.clone());
                        sh
                    }
                };
                described = format!(
                    "{} {}",
                    ins.cmd,
                    serde_json::to_string(&v).unwrap_or_default()
                );
                if ins.cmd == "CMD" {
                    st.cc().cmd = Some(StrSlice(v));
                    st.cmd_set = true;
                } else {
                    st.cc().entrypoint = Some(StrSlice(v));
                    if !st.cmd_set {
                        st.cc().cmd = None;
                    }
                }
            }
            "WORKDIR" => {
                let w = shell::expand(&raw, escape, &lookup).map_err(line_err)?;
                let cur = st.workdir();
                let base = if cur.is_empty() { "/".into() } else { cur };
                let joined = if w.starts_with('/') {
                    w
                } else {
                    format!("{base}/{w}")
                };
                let clean = format!("/{}", crate::ignore::clean(&joined));
                described = format!("WORKDIR {clean}");
                st.cc().working_dir = clean;
            }
            "USER" => {
                let u = shell::expand(&raw, escape, &lookup).map_err(line_err)?;
                if u.is_empty() {
                    return Err(line_err(BuildError::Syntax(
                        "requires exactly one argument".into(),
                    )));
                }
                described = format!("USER {u}");
                st.cc().user = u;
            }
            "EXPOSE" => {
                let ports = shell::expand_words(&raw, escape, &lookup).map_err(line_err)?;
                let map = st.cc().exposed_ports.get_or_insert_with(BTreeMap::new);
                for p in &ports {
                    let p = if p.contains('/') {
                        p.to_ascii_lowercase()
                    } else {
                        format!("{p}/tcp")
                    };
                    map.insert(p, Value::Object(Default::default()));
                }
                described = format!("EXPOSE {}", ports.join(" "));
            }
            "VOLUME" => {
                let vols = match &ins.args {
                    Args::Json(v) => v
                        .iter()
                        .map(|w| shell::expand(w, escape, &lookup))
                        .collect::<Result<Vec<_>, _>>(),
                    Args::Shell(s) => shell::expand_words(s, escape, &lookup),
                }
                .map_err(line_err)?;
                let map = st.cc().volumes.get_or_insert_with(BTreeMap::new);
                for v in &vols {
                    if v.trim().is_empty() {
                        return Err(line_err(BuildError::Syntax(
                            "Volume specified can not be an empty string".into(),
                        )));
                    }
                    map.insert(v.clone(), Value::Object(Default::default()));
                }
                described = format!("VOLUME {vols:?}");
            }
            "STOPSIGNAL" => {
                let s = shell::expand(&raw, escape, &lookup).map_err(line_err)?;
                described = format!("STOPSIGNAL {s}");
                st.cc().stop_signal = Some(s);
            }
            "SHELL" => {
                let Args::Json(v) = &ins.args else {
                    return Err(line_err(BuildError::Syntax(
                        "SHELL requires the arguments to be in JSON form".into(),
                    )));
                };
                if v.is_empty() {
                    return Err(line_err(BuildError::Syntax(
                        "SHELL requires at least one argument".into(),
                    )));
                }
                st.cc().shell = Some(StrSlice(v.clone()));
            }
            "ONBUILD" => {
                let t = raw.trim();
                let word = t
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_uppercase();
                if matches!(word.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                    return Err(line_err(BuildError::Syntax(format!(
                        "{word} isn't allowed as an ONBUILD trigger"
                    ))));
                }
                // The trigger must itself parse.
                parser::parse(t)?;
                st.cc()
                    .on_build
                    .get_or_insert_with(Vec::new)
                    .push(t.to_string());
            }
            "HEALTHCHECK" => {
                let hc = healthcheck(ins, st).map_err(line_err)?;
                st.cc().healthcheck = Some(hc);
            }
            other => {
                return Err(BuildError::Syntax(format!("unknown instruction: {other}")));
            }
        }
        let created_by = format!("/bin/sh -c #(nop)  {described}");
        let key = cache_key(st_parent(&snapshot), &created_by, "");
        self.finish_meta(st, &key, &created_by, opts, out)
    }

    /// Ends a config-only step: from the cache or a new empty-layer image.
    fn finish_meta(
        &self,
        st: &mut Stage,
        key: &str,
        created_by: &str,
        opts: &BuildOptions,
        out: &mut dyn FnMut(BuildOutput),
    ) -> Result<(), BuildError> {
        if !opts.no_cache {
            if let Some(id) = self.cache_get(key) {
                self.use_cached(st, &id)?;
                out(BuildOutput::Stream(" ---> Using cache\n".into()));
                out(BuildOutput::Stream(format!(" ---> {}\n", short(&id))));
                return Ok(());
            }
        }
        let id = self.commit(st, None, created_by, true)?;
        self.cache_put(key, &id);
        out(BuildOutput::Stream(format!(" ---> {}\n", short(&id))));
        Ok(())
    }

    fn use_cached(&self, st: &mut Stage, id: &str) -> Result<(), BuildError> {
        let img = self.images.resolve(id).map_err(internal)?;
        st.config = img.config;
        st.image = Some(id.to_string());
        Ok(())
    }

    /// The image a RUN or COPY builds on: the stage's, or a layerless one
    /// made now for `FROM scratch`.
    fn parent_image(&self, st: &mut Stage) -> Result<String, BuildError> {
        if let Some(id) = &st.image {
            return Ok(id.clone());
        }
        // No timestamp and no history: the same bytes, so the same ID,
        // in every build (the cache keys on it).
        let mut config = st.config.clone();
        config.created = None;
        let id = self
            .images
            .commit(CommitRequest {
                upper: None,
                skip: &[],
                config,
                parent: None,
                tags: &[],
            })
            .map_err(internal)?;
        st.image = Some(id.clone());
        Ok(id)
    }

    fn run(
        &self,
        st: &mut Stage,
        ins: &Instruction,
        opts: &BuildOptions,
        out: &mut dyn FnMut(BuildOutput),
    ) -> Result<(), BuildError> {
        let cmd: Vec<String> = match (&ins.args, ins.heredocs.as_slice()) {
            (Args::Json(v), _) => v.clone(),
            (Args::Shell(s), [h])
                if s.trim() == format!("<<{}", h.name)
                    || s.trim() == format!("<<-{}", h.name)
                    || s.trim() == format!("<<\"{}\"", h.name)
                    || s.trim() == format!("<<'{}'", h.name) =>
            {
                // The heredoc is the script.
                let mut sh = st.shell();
                sh.push(h.content.clone());
                sh
            }
            (Args::Shell(s), hs) => {
                let mut text = s.clone();
                for h in hs {
                    text.push('\n');
                    text.push_str(&h.content);
                    text.push_str(&h.name);
                }
                let mut sh = st.shell();
                sh.push(text);
                sh
            }
        };
        if cmd.is_empty() {
            return Err(BuildError::Syntax(format!(
                "Dockerfile line {}: RUN requires at least one argument",
                ins.line
            )));
        }
        // Build args that are declared and not shadowed by ENV reach the
        // command's environment, and are part of its identity.
        let mut arg_env: Vec<String> = st
            .args
            .iter()
            .filter(|(k, _)| st.env_get(k).is_none())
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect();
        let mut created_by = cmd.join(" ");
        if !arg_env.is_empty() {
            created_by = format!("|{} {} {created_by}", arg_env.len(), arg_env.join(" "));
        }
        // Proxies reach the command but, as in Docker, neither the history
        // (they may hold credentials) nor the cache key.
        for p in PREDEFINED_ARGS {
            if let Some(Some(v)) = opts.build_args.get(*p) {
                if !st.args.contains_key(*p) {
                    arg_env.push(format!("{p}={v}"));
                }
            }
        }
        let parent = self.parent_image(st)?;
        let key = cache_key(Some(&parent), &format!("RUN {created_by}"), "");
        if !opts.no_cache {
            if let Some(id) = self.cache_get(&key) {
                self.use_cached(st, &id)?;
                out(BuildOutput::Stream(" ---> Using cache\n".into()));
                out(BuildOutput::Stream(format!(" ---> {}\n", short(&id))));
                return Ok(());
            }
        }
        let cc = st.config.config.clone().unwrap_or_default();
        let mut env = cc.env.clone().unwrap_or_default();
        env.extend(arg_env);
        let req = RunRequest {
            image: parent,
            cmd: cmd.clone(),
            env,
            user: cc.user.clone(),
            workdir: cc.working_dir.clone(),
            network_mode: opts.network_mode.clone(),
        };
        let cid = self.backend.create(&req)?;
        let guard = ContainerGuard {
            backend: self.backend.as_ref(),
            id: cid.clone(),
        };
        out(BuildOutput::Stream(format!(
            " ---> Running in {}\n",
            short(&cid)
        )));
        let outcome = self.backend.run(&cid, &mut |b: &[u8]| {
            out(BuildOutput::Stream(String::from_utf8_lossy(b).into_owned()))
        })?;
        if outcome.exit_code != 0 {
            return Err(BuildError::RunFailed {
                command: cmd.join(" "),
                code: outcome.exit_code,
            });
        }
        let upper = self.backend.upper_dir(&cid);
        let id = self.commit(st, Some(&upper), &created_by, false)?;
        self.cache_put(&key, &id);
        if opts.rm {
            drop(guard);
            out(BuildOutput::Stream(format!(
                "Removing intermediate container {}\n",
                short(&cid)
            )));
        } else {
            std::mem::forget(guard);
        }
        out(BuildOutput::Stream(format!(" ---> {}\n", short(&id))));
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn copy(
        &self,
        st: &mut Stage,
        ins: &Instruction,
        opts: &BuildOptions,
        escape: char,
        before: &[StageDef],
        results: &HashMap<usize, Stage>,
        out: &mut dyn FnMut(BuildOutput),
    ) -> Result<(), BuildError> {
        let is_add = ins.cmd == "ADD";
        for (f, _) in &ins.flags {
            let ok = match f.as_str() {
                "from" => !is_add,
                "chown" | "chmod" | "link" => true,
                "checksum" | "keep-git-dir" => is_add,
                _ => false,
            };
            if !ok {
                return Err(BuildError::Syntax(format!("Unknown flag: {f}")));
            }
        }
        let snapshot = st.clone();
        let lookup = |n: &str| snapshot.lookup(n);
        let mut words = match &ins.args {
            Args::Json(v) => v
                .iter()
                .map(|w| shell::expand(w, escape, &lookup))
                .collect::<Result<Vec<_>, _>>()?,
            Args::Shell(s) => shell::expand_words(s, escape, &lookup)?,
        };
        if words.len() < 2 {
            return Err(BuildError::Syntax(format!(
                "{} requires at least two arguments, but only one was provided. Destination could not be determined.",
                ins.cmd
            )));
        }
        let dest_word = words.pop().unwrap_or_default();
        // Heredoc sources are inline files.
        let mut inline: Vec<(String, String)> = Vec::new();
        let mut srcs = Vec::new();
        for w in words {
            match w.strip_prefix("<<") {
                Some(rest) => {
                    let name = rest.trim_start_matches('-').trim_matches(['"', '\'']);
                    let h = ins
                        .heredocs
                        .iter()
                        .find(|h| h.name == name)
                        .ok_or_else(|| BuildError::Syntax(format!("no heredoc named {name}")))?;
                    let content = if h.quoted {
                        h.content.clone()
                    } else {
                        expand_heredoc(&h.content, escape, &lookup)?
                    };
                    inline.push((name.to_string(), content));
                }
                None => srcs.push(w),
            }
        }
        let is_url = |s: &str| s.starts_with("http://") || s.starts_with("https://");
        // URLs are fetched on every build: their content, not their
        // address, keys the cache.
        let mut url_sources = Vec::new();
        let mut _downloads: Option<ScratchDir> = None;
        for (i, u) in srcs.iter().filter(|s| is_url(s)).enumerate() {
            if !is_add {
                return Err(BuildError::Syntax(format!(
                    "source can't be a URL for COPY: {u}"
                )));
            }
            let dir = match &_downloads {
                Some(d) => d.0.clone(),
                None => {
                    let d = ScratchDir::new(&self.images.tmp_dir(), "download")?;
                    let p = d.0.clone();
                    _downloads = Some(d);
                    p
                }
            };
            let name = crate::fetch::url_file_name(u);
            let sub = dir.join(i.to_string());
            fs::create_dir(&sub).map_err(internal)?;
            let file = sub.join(if name.is_empty() { "download" } else { &name });
            crate::fetch::download(u, &file)?;
            url_sources.push(crate::context::Source {
                path: file,
                name,
                extract: false,
            });
        }
        srcs.retain(|s| !is_url(s));
        for s in &srcs {
            if s.starts_with("git@") {
                return Err(BuildError::Syntax(format!(
                    "ADD of a git repository ({s}) is not supported"
                )));
            }
        }

        // Where sources come from.
        let from = ins
            .flag("from")
            .map(|f| shell::expand(f, escape, &lookup))
            .transpose()?;
        let _from_root: Option<WorkRoot>;
        let (root, kind) = match from.as_deref() {
            None => (opts.context.clone(), SourceRoot::Context),
            Some(f) => {
                let lower = f.to_ascii_lowercase();
                let image = if let Some(i) = before
                    .iter()
                    .rposition(|d| d.name.as_deref() == Some(&lower))
                {
                    results.get(&i).and_then(|s| s.image.clone())
                } else if let Ok(n) = f.parse::<usize>() {
                    if n >= before.len() {
                        return Err(BuildError::NotFound(format!(
                            "invalid from flag value {f}: refers to current build stage"
                        )));
                    }
                    results.get(&n).and_then(|s| s.image.clone())
                } else {
                    let img = self.image_or_pull(f, opts, out)?;
                    Some(img.id().to_string())
                };
                let w = WorkRoot::mount(&self.images, image.as_deref())?;
                let r = w.rootfs.clone();
                _from_root = Some(w);
                (r, SourceRoot::Stage)
            }
        };
        let mut sources = resolve_sources(&root, &srcs, kind, &ins.cmd)?;
        sources.extend(url_sources);

        // The cache key: every source's names, modes and bytes.
        let mut h = Sha256::new();
        for s in &sources {
            fsutil::hash_tree(&s.path, &s.name, &mut h, &opts.context_digests).map_err(internal)?;
        }
        for (n, c) in &inline {
            h.update(n.as_bytes());
            h.update(b"\0");
            h.update(c.as_bytes());
            h.update(b"\0");
        }
        let content = hex::encode(h.finalize());
        let workdir = st.workdir();
        let dest = if dest_word.starts_with('/') {
            dest_word.clone()
        } else {
            let base = if workdir.is_empty() {
                "/".to_string()
            } else {
                workdir.clone()
            };
            format!("{}/{dest_word}", base.trim_end_matches('/'))
        };
        let to_dir = dest_word.ends_with('/')
            || dest_word == "."
            || sources.len() + inline.len() > 1
            || srcs.iter().any(|s| s.contains(['*', '?', '[']));
        let mut flags_desc = String::new();
        for (f, v) in &ins.flags {
            flags_desc.push_str(&format!("--{f}={} ", v.as_deref().unwrap_or("")));
        }
        let created_by = format!(
            "/bin/sh -c #(nop) {} {flags_desc}file:{content} in {dest} ",
            ins.cmd
        );
        let parent = self.parent_image(st)?;
        let key = cache_key(Some(&parent), &created_by, &content);
        if !opts.no_cache {
            if let Some(id) = self.cache_get(&key) {
                self.use_cached(st, &id)?;
                out(BuildOutput::Stream(" ---> Using cache\n".into()));
                out(BuildOutput::Stream(format!(" ---> {}\n", short(&id))));
                return Ok(());
            }
        }

        let work = WorkRoot::mount(&self.images, Some(&parent))?;
        let rootfs = work.rootfs.clone();
        let owner = match ins.flag("chown") {
            Some(c) => {
                let c = shell::expand(c, escape, &lookup)?;
                fsutil::parse_chown(&rootfs, &c).map_err(BuildError::Syntax)?
            }
            None => (0, 0),
        };
        let chmod = match ins.flag("chmod") {
            Some(m) => Some(
                u32::from_str_radix(m, 8)
                    .map_err(|_| BuildError::Syntax(format!("invalid chmod parameter: {m}")))?,
            ),
            None => None,
        };
        let copts = CopyOpts { owner, chmod };
        let io = |e: std::io::Error| BuildError::Internal(format!("{} to {dest}: {e}", ins.cmd));
        let dest_path = fsutil::scoped_join(&rootfs, &dest, true).map_err(io)?;
        let dest_is_dir = to_dir || dest_path.is_dir();
        if dest_is_dir {
            fsutil::mkdir_all(&dest_path, owner).map_err(io)?;
        } else if let Some(p) = dest_path.parent() {
            fsutil::mkdir_all(p, owner).map_err(io)?;
        }
        for s in &sources {
            let md = fs::metadata(&s.path).map_err(io)?;
            if is_add && md.is_file() && s.extract {
                if let Some(()) = try_extract(&s.path, &dest_path, dest_is_dir).map_err(io)? {
                    continue;
                }
            }
            let target = if md.is_dir() {
                // A directory's contents are copied, not the directory.
                dest_path.clone()
            } else if dest_is_dir {
                dest_path.join(&s.name)
            } else {
                dest_path.clone()
            };
            if md.is_dir() {
                fsutil::mkdir_all(&target, owner).map_err(io)?;
                let mut names: Vec<_> = fs::read_dir(&s.path)
                    .map_err(io)?
                    .filter_map(|e| e.ok().map(|e| e.file_name()))
                    .collect();
                names.sort();
                for n in names {
                    fsutil::copy_tree(&s.path.join(&n), &target.join(&n), copts).map_err(io)?;
                }
            } else {
                fsutil::copy_tree(&s.path, &target, copts).map_err(io)?;
            }
        }
        for (name, content) in &inline {
            let target = if dest_is_dir {
                dest_path.join(name)
            } else {
                dest_path.clone()
            };
            let _ = fs::remove_file(&target);
            fs::write(&target, content).map_err(io)?;
            std::os::unix::fs::lchown(&target, Some(owner.0), Some(owner.1)).map_err(io)?;
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&target, fs::Permissions::from_mode(chmod.unwrap_or(0o644)))
                .map_err(io)?;
        }
        unmount(&rootfs).map_err(internal)?;
        let upper = work.upper();
        let id = self.commit(st, Some(&upper), &created_by, false)?;
        drop(work);
        self.cache_put(&key, &id);
        out(BuildOutput::Stream(format!(" ---> {}\n", short(&id))));
        Ok(())
    }
}

fn st_parent(st: &Stage) -> Option<&str> {
    st.image.as_deref()
}

fn cache_key(parent: Option<&str>, instruction: &str, content: &str) -> String {
    let mut h = Sha256::new();
    h.update(parent.unwrap_or("scratch").as_bytes());
    h.update(b"\n");
    h.update(instruction.as_bytes());
    h.update(b"\n");
    h.update(content.as_bytes());
    hex::encode(h.finalize())
}

/// `ARG a=1 b` → [("a", Some("1")), ("b", None)].
fn arg_decls(
    raw: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, Option<String>)>, BuildError> {
    let words = shell::split_words(raw, escape);
    if words.is_empty() {
        return Err(BuildError::Syntax(
            "ARG requires at least one argument".into(),
        ));
    }
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), Some(shell::expand(v, escape, lookup)?))),
            None => Ok((w.clone(), None)),
        })
        .collect()
}

/// The platform args Docker's builders predefine (used when declared).
fn predefined_default(name: &str) -> Option<String> {
    let arch = berth_image::host_arch();
    Some(match name {
        "TARGETPLATFORM" | "BUILDPLATFORM" => format!("linux/{arch}"),
        "TARGETOS" | "BUILDOS" => "linux".into(),
        "TARGETARCH" | "BUILDARCH" => arch.into(),
        "TARGETVARIANT" | "BUILDVARIANT" => String::new(),
        _ => return None,
    })
}

fn expand_heredoc(
    content: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, BuildError> {
    // Only variables are expanded in a heredoc body; quotes stay.
    let mut out = String::new();
    for (i, part) in content.split('$').enumerate() {
        if i == 0 {
            out.push_str(part);
            continue;
        }
        let expanded = shell::expand(&format!("${part}"), escape, lookup);
        match expanded {
            Ok(_) => {
                // Expand just the variable, keep the rest verbatim.
                let name_len = if part.starts_with('{') {
                    part.find('}').map(|p| p + 1).unwrap_or(0)
                } else {
                    part.chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .count()
                };
                if name_len == 0 {
                    out.push('$');
                    out.push_str(part);
                } else {
                    out.push_str(&shell::expand(
                        &format!("${}", &part[..name_len]),
                        escape,
                        lookup,
                    )?);
                    out.push_str(&part[name_len..]);
                }
            }
            Err(_) => {
                out.push('$');
                out.push_str(part);
            }
        }
    }
    Ok(out)
}

/// Extracts a local tar archive for ADD; `None` when the file is not one.
fn try_extract(src: &Path, dest: &Path, dest_is_dir: bool) -> std::io::Result<Option<()>> {
    use std::io::Read;
    let f = fs::File::open(src)?;
    let (comp, mut plain) = berth_image::compression::decompress(f)?;
    let mut head = [0u8; 512];
    let mut n = 0;
    while n < 512 {
        let r = plain.read(&mut head[n..])?;
        if r == 0 {
            break;
        }
        n += r;
    }
    let is_tar = n == 512 && &head[257..262] == b"ustar";
    if !is_tar {
        // A compressed non-tar file is copied as it is.
        let _ = comp;
        return Ok(None);
    }
    if !dest_is_dir {
        fs::create_dir_all(dest)?;
    }
    let f = fs::File::open(src)?;
    let (_, plain) = berth_image::compression::decompress(f)?;
    let mut ar = tar::Archive::new(plain);
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_preserve_ownerships(true);
    ar.set_overwrite(true);
    // `unpack` refuses entries whose path or parent leads outside `dest`.
    ar.unpack(dest)?;
    Ok(Some(()))
}

fn healthcheck(ins: &Instruction, st: &Stage) -> Result<HealthConfig, BuildError> {
    let raw = ins.raw();
    let t = raw.trim();
    if t.eq_ignore_ascii_case("NONE") {
        return Ok(HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        });
    }
    let (word, rest) = match t.find(char::is_whitespace) {
        Some(p) => (&t[..p], t[p..].trim()),
        None => (t, ""),
    };
    if !word.eq_ignore_ascii_case("CMD") {
        return Err(BuildError::Syntax(format!(
            "Unknown type \"{word}\" in HEALTHCHECK (try CMD)"
        )));
    }
    let test: Vec<String> = match parser::parse_json(rest) {
        Some(v) => {
            let mut t = vec!["CMD".to_string()];
            t.extend(v);
            t
        }
        None => vec!["CMD-SHELL".to_string(), rest.to_string()],
    };
    let _ = st;
    let mut hc = HealthConfig {
        test,
        ..Default::default()
    };
    for (f, v) in &ins.flags {
        let v = v.as_deref().unwrap_or("");
        let field = match f.as_str() {
            "interval" => &mut hc.interval,
            "timeout" => &mut hc.timeout,
            "start-period" => &mut hc.start_period,
            "start-interval" => &mut hc.start_interval,
            "retries" => {
                hc.retries = v
                    .parse()
                    .map_err(|_| BuildError::Syntax(format!("invalid --retries value {v:?}")))?;
                continue;
            }
            other => return Err(BuildError::Syntax(format!("Unknown flag: {other}"))),
        };
        *field = parse_duration(v).ok_or_else(|| {
            BuildError::Syntax(format!("invalid --{f} value {v:?}: not a duration"))
        })?;
    }
    Ok(hc)
}

/// Go's duration syntax ("30s", "1m30s", "500ms") in nanoseconds.
fn parse_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += num * mult;
        rest = &rest[u..];
    }
    Some(total as i64)
}

/// The earlier stages stage `i` names (its FROM and `--from`).
fn stage_deps(defs: &[StageDef], i: usize, escape: char) -> Vec<usize> {
    let find = |name: &str| -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        defs[..i]
            .iter()
            .rposition(|d| d.name.as_deref() == Some(&lower))
            .or_else(|| name.parse::<usize>().ok().filter(|n| *n < i))
    };
    let mut out = Vec::new();
    if let Some(base) = shell::split_words(&defs[i].from.raw(), escape).first() {
        out.extend(find(base));
    }
    for ins in &defs[i].body {
        if let Some(f) = ins.flag("from") {
            out.extend(find(f));
        }
    }
    out
}

/// Indexes of the stages the last one needs (FROM and --from references).
fn needed_stages(defs: &[StageDef], escape: char) -> HashSet<usize> {
    let mut needed = HashSet::new();
    let mut todo = vec![defs.len() - 1];
    while let Some(i) = todo.pop() {
        if needed.insert(i) {
            todo.extend(stage_deps(defs, i, escape));
        }
    }
    needed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(30_000_000_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("x"), None);
    }

    #[test]
    fn stage_split_and_needs() {
        let df = parser::parse(
            "ARG V=1\nFROM busybox AS a\nRUN x\nFROM busybox AS unused\nRUN y\nFROM a AS b\nCOPY --from=0 /x /y\n",
        )
        .unwrap();
        let (meta, defs) = stages(&df).unwrap();
        assert_eq!(meta.len(), 1);
        assert_eq!(defs.len(), 3);
        let n = needed_stages(&defs, '\\');
        assert!(n.contains(&0) && n.contains(&2) && !n.contains(&1));
        assert!(stages(&parser::parse("RUN x\n").unwrap()).is_err());
    }

    #[test]
    fn heredoc_expansion_keeps_quotes() {
        let look = |n: &str| (n == "A").then(|| "v".to_string());
        assert_eq!(
            expand_heredoc("a='$A' ${A}b $ c\n", '\\', &look).unwrap(),
            "a='v' vb $ c\n"
        );
    }

    #[test]
    fn cache_keys_differ() {
        assert_ne!(
            cache_key(Some("a"), "RUN x", ""),
            cache_key(Some("b"), "RUN x", "")
        );
        assert_ne!(
            cache_key(Some("a"), "COPY", "h1"),
            cache_key(Some("a"), "COPY", "h2")
        );
    }
}

//! `berth build`: the context (a directory with `.dockerignore` applied
//! here, as docker does, or a tar/Dockerfile on stdin) is sent as a tar to
//! `POST /build`, and the daemon's JSON stream is printed.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use berth_api::image::JsonMessage;
use berth_build::ignore::Matcher;
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use hyper::Method;
use tokio::sync::mpsc;

use super::{out, requires_exact, CmdResult, Ctx, StatusError};
use crate::client::{ClientError, JsonStream, Payload, Query};

/// `berth build`. (The rarer options are `Box<str>`: the struct stays
/// small enough to sit unboxed beside the other `builder` commands.)
#[derive(Debug, Clone, clap::Args)]
#[command(
    about = "Build an image from a Dockerfile",
    override_usage = "berth build [OPTIONS] PATH | URL | -"
)]
pub(crate) struct BuildArgs {
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag")]
    tags: Vec<String>,
    /// Name of the Dockerfile (default: "PATH/Dockerfile")
    #[arg(short = 'f', long = "file")]
    file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg")]
    build_args: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pull: bool,
    /// Set metadata for an image
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Suppress the build output and print image ID on success
    #[arg(short, long)]
    quiet: bool,
    /// Write the image ID to the file
    #[arg(long)]
    iidfile: Option<Box<str>>,
    /// Remove intermediate containers after a successful build
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    rm: bool,
    /// Always remove intermediate containers
    #[arg(long)]
    force_rm: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    platform: Option<Box<str>>,
    /// Network mode for RUN instructions
    #[arg(long)]
    network: Option<Box<str>>,
    /// Images to consider as cache sources
    #[arg(long = "cache-from")]
    cache_from: Vec<String>,
    /// PATH | URL | -
    #[arg(value_name = "PATH | URL | -")]
    context: Vec<String>,
}

/// A tar of the context, written as it is walked.
struct TarOut<W: Write> {
    b: tar::Builder<W>,
}

impl<W: Write> TarOut<W> {
    fn new(w: W) -> TarOut<W> {
        let mut b = tar::Builder::new(w);
        // Symlinks travel as symlinks: following one would send a file
        // from outside the context.
        b.follow_symlinks(false);
        TarOut { b }
    }

    fn add_bytes(&mut self, name: &str, data: &[u8]) -> std::io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        );
        h.set_entry_type(tar::EntryType::Regular);
        self.b.append_data(&mut h, name, data)
    }

    fn finish(self) -> std::io::Result<W> {
        self.b.into_inner()
    }
}

/// Adds the directory tree under `root` to the tar, minus what the
/// `.dockerignore` excludes. The Dockerfile and `.dockerignore` are sent
/// even when excluded (the daemon needs them), as docker does.
fn add_dir<W: Write>(
    t: &mut TarOut<W>,
    root: &Path,
    rel: &str,
    ignore: &Matcher,
    keep: &[String],
) -> std::io::Result<()> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let mut entries: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let md = std::fs::symlink_metadata(e.path())?;
        let excluded = ignore.excluded(&path) && !keep.contains(&path);
        if md.is_dir() {
            if excluded
                && ignore.skip_dir(&path)
                && !keep.iter().any(|k| k.starts_with(&format!("{path}/")))
            {
                continue;
            }
            if !excluded {
                t.b.append_path_with_name(e.path(), &path)?;
            }
            add_dir(t, root, &path, ignore, keep)?;
        } else if !excluded {
            t.b.append_path_with_name(e.path(), &path)
                .map_err(|err| std::io::Error::new(err.kind(), format!("{path}: {err}")))?;
        }
    }
    Ok(())
}

fn random_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        ".dockerfile.{:08x}{:04x}",
        nanos,
        std::process::id() & 0xffff
    )
}

fn is_tar(data: &[u8]) -> bool {
    // gzip, bzip2, xz, zstd or a plain tar header.
    data.starts_with(&[0x1f, 0x8b])
        || data.starts_with(b"BZh")
        || data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
        || data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || (data.len() >= 262 && &data[257..262] == b"ustar")
}

/// docker's `IsGitURL`: what it would clone.
fn is_git_url(spec: &str) -> bool {
    spec.starts_with("git://")
        || spec.starts_with("git@")
        || spec.starts_with("github.com/")
        || ((spec.starts_with("http://") || spec.starts_with("https://"))
            && (spec.contains(".git#") || spec.ends_with(".git")))
}

/// What goes into the context, worked out before anything is sent: the
/// errors a user can make show before the daemon is asked anything.
enum ContextSource {
    /// A directory, `.dockerignore` applied, plus a Dockerfile that lives
    /// elsewhere (stdin, outside the directory) under a made-up name.
    Dir {
        root: PathBuf,
        ignore: Matcher,
        keep: Vec<String>,
        extra: Option<(String, Vec<u8>)>,
    },
    /// A tar on stdin, passed on as it comes; `head` is what was read of
    /// it to tell it from a Dockerfile.
    StdinTar { head: Vec<u8> },
    /// A Dockerfile alone on stdin: an empty context around it.
    Dockerfile(Vec<u8>),
}

/// Reads up to `n` bytes (fewer only at the end of the input).
fn read_head(r: &mut impl Read, n: usize) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    r.take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// Where the context comes from and the Dockerfile's name in it.
fn plan_context(args: &BuildArgs, spec: &str) -> anyhow::Result<(ContextSource, String)> {
    let stdin_df = args.file.as_deref() == Some("-");
    if spec == "-" {
        if stdin_df {
            anyhow::bail!(
                "invalid argument: can't use stdin for both build context and dockerfile"
            );
        }
        let mut stdin = std::io::stdin().lock();
        let head = read_head(&mut stdin, 512)?;
        if is_tar(&head) {
            let name = args.file.clone().unwrap_or_else(|| "Dockerfile".into());
            return Ok((ContextSource::StdinTar { head }, name));
        }
        let mut data = head;
        stdin.read_to_end(&mut data)?;
        return Ok((ContextSource::Dockerfile(data), "Dockerfile".into()));
    }
    let root = PathBuf::from(spec);
    // A local directory wins over a name that looks like a URL, as in
    // docker; remote contexts need the daemon to reach out, which it
    // does not.
    if !root.is_dir() {
        if is_git_url(spec) {
            anyhow::bail!(
                "unable to prepare context: building from a git repository ({spec}) is not supported: clone it and build the directory"
            );
        }
        if spec.contains("://") {
            anyhow::bail!(
                "unable to prepare context: building from a URL ({spec}) is not supported: download the context and build it from a file or stdin"
            );
        }
    }
    let md = std::fs::metadata(&root)
        .map_err(|_| anyhow::anyhow!("unable to prepare context: path {spec:?} not found"))?;
    if !md.is_dir() {
        anyhow::bail!("unable to prepare context: context must be a directory: {spec}");
    }
    // Where the Dockerfile comes from, and its name in the context.
    let mut extra: Option<(String, Vec<u8>)> = None;
    let df_rel: String;
    let df_host: Option<PathBuf>;
    match args.file.as_deref() {
        Some("-") => {
            let mut data = Vec::new();
            std::io::stdin().read_to_end(&mut data)?;
            let n = random_name();
            extra = Some((n.clone(), data));
            df_rel = n;
            df_host = None;
        }
        Some(f) => {
            let p = PathBuf::from(f);
            let abs_root = std::fs::canonicalize(&root)?;
            let abs_df = std::fs::canonicalize(&p).map_err(|_| {
                anyhow::anyhow!("unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {f}: no such file or directory")
            })?;
            match abs_df.strip_prefix(&abs_root) {
                Ok(rel) => {
                    df_rel = rel.to_string_lossy().into_owned();
                    df_host = Some(abs_df.clone());
                }
                Err(_) => {
                    // A Dockerfile outside the context travels inside it.
                    let n = random_name();
                    extra = Some((n.clone(), std::fs::read(&abs_df)?));
                    df_rel = n;
                    df_host = Some(abs_df.clone());
                }
            }
        }
        None => {
            df_rel = "Dockerfile".into();
            let p = root.join("Dockerfile");
            if !p.exists() {
                anyhow::bail!(
                    "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}: no such file or directory",
                    std::fs::canonicalize(&root).unwrap_or(root.clone()).join("Dockerfile").display()
                );
            }
            df_host = Some(p);
        }
    }
    // `<Dockerfile>.dockerignore` next to the Dockerfile wins over the
    // context's `.dockerignore`.
    let mut ignore_text = None;
    if let Some(h) = &df_host {
        let mut n = h.as_os_str().to_owned();
        n.push(".dockerignore");
        ignore_text = std::fs::read_to_string(PathBuf::from(n)).ok();
    }
    if ignore_text.is_none() {
        ignore_text = std::fs::read_to_string(root.join(".dockerignore")).ok();
    }
    let ignore = Matcher::parse(ignore_text.as_deref().unwrap_or(""))
        .map_err(|e| anyhow::anyhow!("unable to prepare context: {e}"))?;
    let keep = vec![df_rel.clone(), ".dockerignore".to_string()];
    Ok((
        ContextSource::Dir {
            root,
            ignore,
            keep,
            extra,
        },
        df_rel,
    ))
}

/// Writes the context tar to `w` as the directory is walked (or stdin
/// read): nothing is held whole in memory.
fn write_context<W: Write>(src: ContextSource, w: W) -> std::io::Result<W> {
    match src {
        ContextSource::StdinTar { head } => {
            let mut w = w;
            std::io::copy(&mut head.chain(std::io::stdin().lock()), &mut w)?;
            Ok(w)
        }
        ContextSource::Dockerfile(data) => {
            let mut t = TarOut::new(w);
            t.add_bytes("Dockerfile", &data)?;
            t.finish()
        }
        ContextSource::Dir {
            root,
            ignore,
            keep,
            extra,
        } => {
            let mut t = TarOut::new(w);
            add_dir(&mut t, &root, "", &ignore, &keep)?;
            if let Some((n, data)) = extra {
                t.add_bytes(&n, &data)?;
            }
            t.finish()
        }
    }
}

/// The request body's writing end: what the tar writer produces goes to
/// the connection in pieces of [`CHUNK`] bytes, a few at a time in
/// flight, so the client's memory stays flat whatever the context's size.
struct BodyWriter {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    buf: BytesMut,
    sent: Arc<AtomicU64>,
    /// Set when the request ended first (the daemon answered early).
    gone: Arc<AtomicBool>,
}

const CHUNK: usize = 256 * 1024;

impl BodyWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        let n = chunk.len() as u64;
        if self.tx.blocking_send(Ok(chunk)).is_err() {
            self.gone.store(true, Ordering::Relaxed);
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the daemon stopped reading the build context",
            ));
        }
        self.sent.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }
}

impl Write for BodyWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// The context as a streamed request body, written by a thread of its
/// own; the thread's result tells whether the walk failed.
struct ContextUpload {
    body: crate::client::Body,
    sent: Arc<AtomicU64>,
    gone: Arc<AtomicBool>,
    writer: std::thread::JoinHandle<std::io::Result<()>>,
}

fn upload(src: ContextSource) -> ContextUpload {
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
    let sent = Arc::new(AtomicU64::new(0));
    let gone = Arc::new(AtomicBool::new(false));
    let w = BodyWriter {
        tx: tx.clone(),
        buf: BytesMut::with_capacity(CHUNK),
        sent: sent.clone(),
        gone: gone.clone(),
    };
    let writer = std::thread::spawn(move || {
        let r = write_context(src, w).and_then(|mut w| w.flush());
        if let Err(e) = &r {
            // An error item aborts the body: the daemon sees a broken
            // request, never a short tar it would take for the context.
            let _ = tx.blocking_send(Err(std::io::Error::new(e.kind(), e.to_string())));
        }
        r
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|r| (r.map(Frame::data), rx))
    });
    ContextUpload {
        body: StreamBody::new(stream).boxed_unsync(),
        sent,
        gone,
        writer,
    }
}

fn human_size(n: usize) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < units.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!(
            "{}{}",
            format!("{v:.4}")
                .chars()
                .take(5)
                .collect::<String>()
                .trim_end_matches('.'),
            units[u]
        )
    }
}

/// `berth build`.
pub(crate) async fn build(ctx: &Ctx, args: &BuildArgs) -> CmdResult {
    requires_exact("build", "[OPTIONS] PATH | URL | -", args.context.len(), 1)?;
    let spec = args.context[0].clone();
    if spec == "-" && std::io::stdin().is_terminal() {
        anyhow::bail!("unable to prepare context: no context on stdin");
    }
    let (source, dockerfile) = {
        let a = args.clone();
        let spec = spec.clone();
        tokio::task::spawn_blocking(move || plan_context(&a, &spec)).await??
    };
    let mut build_args: BTreeMap<String, Option<String>> = BTreeMap::new();
    for a in &args.build_args {
        match a.split_once('=') {
            Some((k, v)) => {
                build_args.insert(k.to_string(), Some(v.to_string()));
            }
            None => {
                build_args.insert(a.clone(), std::env::var(a).ok());
            }
        }
    }
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    for l in &args.labels {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let mut query = Query::new();
    for t in &args.tags {
        query = query.add("t", t.as_str());
    }
    query = query
        .add("dockerfile", dockerfile.as_str())
        .add_if(
            !build_args.is_empty(),
            "buildargs",
            serde_json::to_string(&build_args)?,
        )
        .add_if(
            !labels.is_empty(),
            "labels",
            serde_json::to_string(&labels)?,
        )
        .add_nonempty("target", args.target.as_deref().unwrap_or(""))
        .add_if(args.no_cache, "nocache", "1")
        .add_if(args.pull, "pull", "1")
        .add_if(args.quiet, "q", "1")
        .add_if(!args.rm, "rm", "0")
        .add_if(args.force_rm, "forcerm", "1")
        .add_nonempty("platform", args.platform.as_deref().unwrap_or(""))
        .add_nonempty("networkmode", args.network.as_deref().unwrap_or(""))
        .add_if(
            !args.cache_from.is_empty(),
            "cachefrom",
            serde_json::to_string(&args.cache_from)?,
        );
    // Credentials for the pulls of FROM images, as docker sends them.
    let auth = super::registry::registry_config_header();
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| ("X-Registry-Config", a))
        .into_iter()
        .collect();
    let up = upload(source);
    let resp = ctx
        .client
        .request(
            Method::POST,
            "/build",
            &query,
            Payload::Stream("application/x-tar", up.body),
            &headers,
        )
        .await;
    // The daemon answers once it has read the whole body (or given up on
    // it): by now the writer is done or its sends fail.
    let walked = tokio::task::spawn_blocking(move || up.writer.join())
        .await?
        .unwrap_or_else(|_| Err(std::io::Error::other("the context writer panicked")));
    if let Err(e) = walked {
        if !up.gone.load(Ordering::Relaxed) {
            anyhow::bail!("unable to prepare context: {e}");
        }
    }
    if !args.quiet {
        out(&format!(
            "Sending build context to Docker daemon  {}\r\n",
            human_size(up.sent.load(Ordering::Relaxed) as usize)
        ))?;
    }
    let resp = resp?;
    let mut stream = JsonStream::new(resp);
    let mut id: Option<String> = None;
    // On a terminal each step's result line also tells its time, or that
    // it came from the cache; piped output stays exactly docker's.
    let terminal = std::io::stdout().is_terminal();
    let mut step_start = std::time::Instant::now();
    let mut step_cached = false;
    // A FROM image's pull reports as `docker pull` does.
    let mut pull_display = crate::format::progress::ProgressDisplay::new(terminal);
    while let Some(msg) = stream.next::<JsonMessage>().await {
        let msg = msg?;
        if let Some(e) = &msg.error_detail {
            let code = e.code.filter(|c| *c != 0).unwrap_or(1);
            return Err(StatusError::new(code as i32, e.message.clone()).into());
        }
        if let Some(e) = &msg.error {
            return Err(ClientError::Stream(e.clone()).into());
        }
        if let Some(aux) = &msg.aux {
            if let Some(i) = aux.get("ID").and_then(|v| v.as_str()) {
                id = Some(i.to_string());
            }
        }
        if msg.stream.is_none() && msg.status.is_some() {
            if !args.quiet {
                let _ = pull_display.show(&msg, &mut std::io::stdout().lock());
            }
            continue;
        }
        if let Some(s) = &msg.stream {
            if args.quiet {
                continue;
            }
            if s.starts_with("Step ") {
                step_start = std::time::Instant::now();
                step_cached = false;
            } else if s == " ---> Using cache\n" {
                step_cached = true;
            }
            match step_result(s) {
                Some(short) if terminal => {
                    let mark = if step_cached {
                        "CACHED".to_string()
                    } else {
                        format!("{:.2}s", step_start.elapsed().as_secs_f64())
                    };
                    out(&format!(" ---> {short}  [{mark}]\n"))?;
                }
                _ => out(s)?,
            }
        }
    }
    let Some(id) = id else {
        anyhow::bail!("the daemon ended the build without an image ID");
    };
    if args.quiet {
        out(&format!("{id}\n"))?;
    }
    if let Some(f) = args.iidfile.as_deref() {
        std::fs::write(f, &id)
            .map_err(|e| anyhow::anyhow!("failed to write image ID to {f}: {e}"))?;
    }
    Ok(0)
}

/// The image ID of a " ---> <12 hex>" line that ends a step.
fn step_result(s: &str) -> Option<&str> {
    let id = s.strip_prefix(" ---> ")?.strip_suffix('\n')?;
    (id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_results() {
        assert_eq!(step_result(" ---> 0123456789ab\n"), Some("0123456789ab"));
        assert_eq!(step_result(" ---> Using cache\n"), None);
        assert_eq!(step_result(" ---> Running in 0123456789ab\n"), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(2048), "2.048kB");
    }

    #[test]
    fn context_applies_dockerignore() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::write(r.join("Dockerfile"), "FROM x\n").unwrap();
        std::fs::write(
            r.join(".dockerignore"),
            "secret*\nDockerfile\nlogs\n!logs/keep\n",
        )
        .unwrap();
        std::fs::write(r.join("secret.txt"), "s").unwrap();
        std::fs::write(r.join("app.txt"), "a").unwrap();
        std::fs::create_dir_all(r.join("logs")).unwrap();
        std::fs::write(r.join("logs/keep"), "k").unwrap();
        std::fs::write(r.join("logs/drop"), "d").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", r.join("link")).unwrap();
        let args = BuildArgs {
            tags: vec![],
            file: None,
            build_args: vec![],
            target: None,
            no_cache: false,
            pull: false,
            labels: vec![],
            quiet: false,
            iidfile: None,
            rm: true,
            force_rm: false,
            platform: None,
            network: None,
            cache_from: vec![],
            context: vec![],
        };
        let (src, df) = plan_context(&args, r.to_str().unwrap()).unwrap();
        assert_eq!(df, "Dockerfile");
        let tar = write_context(src, Vec::new()).unwrap();
        let mut ar = tar::Archive::new(&tar[..]);
        let mut names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                ".dockerignore",
                "Dockerfile",
                "app.txt",
                "link",
                "logs/keep"
            ]
        );
        let mut ar = tar::Archive::new(&tar[..]);
        let link = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap().to_str() == Some("link"))
            .unwrap();
        assert_eq!(link.header().entry_type(), tar::EntryType::Symlink);
    }
}

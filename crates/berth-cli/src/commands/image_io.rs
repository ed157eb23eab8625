//! Moving images in and out: `import` (a rootfs tarball), `load` and `save`
//! (image archives), and `pull` (also used by `run`/`create`). Tarballs are
//! streamed in both directions, never held in memory.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use berth_api::image::JsonMessage;
use berth_api::Reference;
use clap::Args;
use hyper::header::CONTENT_TYPE;
use hyper::Method;

use super::{open_error, out, requires_min, requires_range, CmdResult, Ctx};
use crate::client::{next_chunk, reader_body, ClientError, JsonStream, Payload, Query};
use crate::format::progress::{ProgressDisplay, ShowError};

/// `berth import`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Import the contents from a tarball to create a filesystem image",
    override_usage = "berth import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]"
)]
pub(crate) struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", value_name = "list")]
    pub(crate) change: Vec<String>,
    /// Set commit message for imported image
    #[arg(
        short = 'm',
        long,
        value_name = "string",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) message: String,
    /// Set platform if server is multi-platform capable
    #[arg(
        long,
        value_name = "string",
        env = "DOCKER_DEFAULT_PLATFORM",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) platform: String,
    /// file|URL|- [REPOSITORY[:TAG]]
    #[arg(value_name = "file|URL|-")]
    pub(crate) args: Vec<String>,
}

/// `berth load`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Load an image from a tar archive or STDIN",
    override_usage = "berth load [OPTIONS]"
)]
pub(crate) struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long, value_name = "string")]
    pub(crate) input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
}

/// `berth save`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Save one or more images to a tar archive (streamed to STDOUT by default)",
    override_usage = "berth save [OPTIONS] IMAGE [IMAGE...]"
)]
pub(crate) struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long, value_name = "string")]
    pub(crate) output: Option<String>,
    /// IMAGE [IMAGE...]
    #[arg(value_name = "IMAGE")]
    pub(crate) images: Vec<String>,
}

/// `berth pull`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Download an image from a registry",
    override_usage = "berth pull [OPTIONS] NAME[:TAG|@DIGEST]"
)]
pub(crate) struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub(crate) all_tags: bool,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    /// Set platform if server is multi-platform capable
    #[arg(
        long,
        value_name = "string",
        env = "DOCKER_DEFAULT_PLATFORM",
        default_value = "",
        hide_default_value = true
    )]
    pub(crate) platform: String,
    /// NAME[:TAG|@DIGEST]
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub(crate) args: Vec<String>,
}

/// Prints a JSON message stream with docker's display; an in-band error
/// becomes [`ClientError::Stream`] (printed bare, exit 1).
pub(crate) async fn display_stream(
    stream: &mut JsonStream,
    to_stderr: bool,
    quiet: bool,
) -> anyhow::Result<()> {
    let terminal = if to_stderr {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    let mut display = ProgressDisplay::new(terminal && !quiet);
    while let Some(msg) = stream.next::<JsonMessage>().await {
        let msg = msg?;
        let shown = if quiet {
            display.show(&msg, &mut std::io::sink())
        } else if to_stderr {
            display.show(&msg, &mut std::io::stderr().lock())
        } else {
            display.show(&msg, &mut std::io::stdout().lock())
        };
        match shown {
            Ok(_) => {}
            Err(ShowError::Daemon(m)) => return Err(ClientError::Stream(m).into()),
            Err(ShowError::Io(e)) => return Err(e.into()),
        }
    }
    Ok(())
}

/// `POST /images/create?fromImage=NAME&tag=TAG` with the progress on
/// stderr, as `run` does when the image is missing.
pub(crate) async fn pull_image(
    ctx: &Ctx,
    r: &Reference,
    platform: &str,
    quiet: bool,
) -> anyhow::Result<()> {
    let tag = r.digest().or(r.tag()).unwrap_or("latest");
    let query = Query::new()
        .add("fromImage", r.name())
        .add("tag", tag)
        .add_nonempty("platform", &platform.to_lowercase());
    let resp = ctx
        .client
        .request(
            Method::POST,
            "/images/create",
            &query,
            Payload::None,
            &[("X-Registry-Auth", &super::registry::auth_header_for(r))],
        )
        .await?;
    let mut stream = JsonStream::new(resp);
    display_stream(&mut stream, true, quiet).await
}

/// `berth pull`.
pub(crate) async fn pull(ctx: &Ctx, args: &PullArgs) -> CmdResult {
    super::requires_exact("pull", "[OPTIONS] NAME[:TAG|@DIGEST]", args.args.len(), 1)?;
    let mut r = Reference::parse_normalized(&args.args[0])?;
    if r.is_name_only() && !args.all_tags {
        r = r.with_tag("latest")?;
        if !args.quiet {
            super::outln("Using default tag: latest")?;
        }
    }
    let mut query = Query::new()
        .add("fromImage", r.name())
        .add_nonempty("platform", &args.platform.to_lowercase());
    if let Some(t) = r.digest().or(r.tag()) {
        query = query.add("tag", t);
    }
    let resp = ctx
        .client
        .request(
            Method::POST,
            "/images/create",
            &query,
            Payload::None,
            &[("X-Registry-Auth", &super::registry::auth_header_for(&r))],
        )
        .await?;
    let mut stream = JsonStream::new(resp);
    display_stream(&mut stream, false, args.quiet).await?;
    super::outln(&r.to_string())?;
    Ok(0)
}

/// `berth import file|URL|- [REPOSITORY[:TAG]]`: the tarball is the body
/// of `POST /images/create?fromSrc=-`.
pub(crate) async fn import(ctx: &Ctx, args: &ImportArgs) -> CmdResult {
    requires_range(
        "import",
        "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
        args.args.len(),
        1,
        2,
    )?;
    let source = args.args[0].as_str();
    let repo = args.args.get(1).map(String::as_str).unwrap_or("");
    if !repo.is_empty() {
        Reference::parse_normalized(repo)?;
    }
    let is_url = source.starts_with("http://") || source.starts_with("https://");
    let (from_src, payload) = if source == "-" {
        (
            "-",
            Payload::Stream("text/plain", reader_body(tokio::io::stdin())),
        )
    } else if is_url {
        (source, Payload::None)
    } else {
        let file = tokio::fs::File::open(source)
            .await
            .map_err(|e| anyhow::anyhow!(open_error(source, &e)))?;
        ("-", Payload::Stream("text/plain", reader_body(file)))
    };
    let mut query = Query::new()
        .add("fromSrc", from_src)
        .add_nonempty("repo", repo)
        .add_nonempty("message", &args.message)
        .add_nonempty("platform", &args.platform.to_lowercase());
    for c in &args.change {
        query = query.add("changes", c.as_str());
    }
    let resp = ctx
        .client
        .request(Method::POST, "/images/create", &query, payload, &[])
        .await?;
    let mut stream = JsonStream::new(resp);
    display_stream(&mut stream, false, false).await?;
    Ok(0)
}

/// `berth load [-i file] [-q]`: `POST /images/load?quiet=0|1` with the
/// archive as a chunked `application/x-tar` body.
pub(crate) async fn load(ctx: &Ctx, args: &LoadArgs) -> CmdResult {
    let body = match args.input.as_deref() {
        None | Some("") => {
            if std::io::stdin().is_terminal() {
                anyhow::bail!("requested load from stdin, but stdin is empty");
            }
            reader_body(tokio::io::stdin())
        }
        Some(path) => {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| anyhow::anyhow!(open_error(path, &e)))?;
            reader_body(file)
        }
    };
    let quiet = args.quiet || !std::io::stdout().is_terminal();
    let query = Query::new().add("quiet", if quiet { "1" } else { "0" });
    let resp = ctx
        .client
        .request(
            Method::POST,
            "/images/load",
            &query,
            Payload::Stream("application/x-tar", body),
            &[],
        )
        .await?;
    let is_json = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if is_json {
        let mut stream = JsonStream::new(resp);
        display_stream(&mut stream, false, false).await?;
    } else {
        let mut body = resp.into_body();
        while let Some(chunk) = next_chunk(&mut body).await? {
            out(&String::from_utf8_lossy(&chunk))?;
        }
    }
    Ok(0)
}

/// `berth save [-o file] IMAGE...`: `GET /images/get?names=…`, streamed to
/// stdout or, through a temporary file renamed at the end, to `-o`.
pub(crate) async fn save(ctx: &Ctx, args: &SaveArgs) -> CmdResult {
    requires_min("save", "[OPTIONS] IMAGE [IMAGE...]", args.images.len(), 1)?;
    let mut query = Query::new();
    for name in &args.images {
        query = query.add("names", name.as_str());
    }
    download_to(
        ctx,
        "/images/get",
        &query,
        args.output.as_deref(),
        "save image",
    )
    .await
}

/// GETs `path` and writes the body (a tar) to the file `output` (atomically)
/// or to stdout, which must not be a terminal: `save` and `export`.
pub(crate) async fn download_to(
    ctx: &Ctx,
    path: &str,
    query: &Query,
    output: Option<&str>,
    what: &str,
) -> CmdResult {
    let output = output.filter(|o| !o.is_empty());
    if output.is_none() && std::io::stdout().is_terminal() {
        anyhow::bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let mut target = match output {
        Some(path) => Some(
            AtomicFile::create(Path::new(path))
                .map_err(|e| anyhow::anyhow!("failed to {what}: {e}"))?,
        ),
        None => None,
    };
    let resp = ctx
        .client
        .request(Method::GET, path, query, Payload::None, &[])
        .await?;
    let mut body = resp.into_body();
    while let Some(chunk) = next_chunk(&mut body).await? {
        match &mut target {
            Some(f) => f.file.write_all(&chunk)?,
            None => {
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(&chunk)?;
                stdout.flush()?;
            }
        }
    }
    if let Some(f) = target {
        f.commit()?;
    }
    Ok(0)
}

/// A file written under a temporary name in the same directory, synced and
/// renamed into place on commit, removed when dropped uncommitted (docker's
/// `atomicwriter`, mode 0600).
struct AtomicFile {
    file: std::fs::File,
    tmp: PathBuf,
    dest: PathBuf,
    done: bool,
}

impl AtomicFile {
    fn create(dest: &Path) -> std::io::Result<AtomicFile> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "invalid output path: directory {:?} does not exist",
                    dir.display().to_string()
                ),
            ));
        }
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".tmp-{name}-{}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        Ok(AtomicFile {
            file,
            tmp,
            dest: dest.to_path_buf(),
            done: false,
        })
    }

    fn commit(mut self) -> std::io::Result<()> {
        self.file.sync_all()?;
        std::fs::rename(&self.tmp, &self.dest)?;
        if let Some(dir) = self.dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        self.done = true;
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_file_commits_or_vanishes() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.tar");
        let mut f = AtomicFile::create(&dest).unwrap();
        f.file.write_all(b"data").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"data");
        let other = dir.path().join("never.tar");
        drop(AtomicFile::create(&other).unwrap());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(AtomicFile::create(&dir.path().join("missing/x.tar")).is_err());
    }
}

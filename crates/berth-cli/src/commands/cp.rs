//! `cp`: files between a container and the local filesystem, through
//! `HEAD/GET/PUT /containers/{id}/archive`, with docker's rules for what
//! lands where (copy into a directory, rename, `dir/.` for contents, `-`
//! for a tar stream).

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use clap::Args;
use hyper::Method;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::{requires_exact, CmdResult, Ctx, StatusError};
use crate::client::{next_chunk, reader_body, Payload, Query};

/// `berth cp`.
#[derive(Debug, Clone, Args)]
#[command(
    override_usage = "berth cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH"
)]
pub(crate) struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    pub(crate) archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub(crate) follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    /// SRC and DEST
    #[arg(value_name = "PATH")]
    pub(crate) paths: Vec<String>,
}

/// Docker's `PathStat`.
#[derive(Debug, Clone, Default, Deserialize)]
struct PathStat {
    #[serde(default)]
    mode: u32,
    #[serde(default, rename = "linkTarget")]
    link_target: String,
}

impl PathStat {
    fn is_dir(&self) -> bool {
        self.mode & (1 << 31) != 0
    }
    fn is_link(&self) -> bool {
        self.mode & (1 << 27) != 0
    }
}

fn err(msg: impl Into<String>) -> anyhow::Error {
    StatusError::new(1, msg.into()).into()
}

/// `container:path`, or `None` for a local path (docker's `splitCpArg`).
fn split_arg(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    arg.split_once(':')
}

fn decode_stat(v: Option<&hyper::header::HeaderValue>) -> PathStat {
    v.and_then(|v| v.to_str().ok())
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

async fn stat(ctx: &Ctx, container: &str, path: &str) -> anyhow::Result<Option<PathStat>> {
    let q = Query::new().add("path", path);
    match ctx
        .client
        .request(
            Method::HEAD,
            &format!("/containers/{container}/archive"),
            &q,
            Payload::None,
            &[],
        )
        .await
    {
        Ok(resp) => Ok(Some(decode_stat(
            resp.headers().get("X-Docker-Container-Path-Stat"),
        ))),
        Err(e) if e.status() == Some(404) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn cp(ctx: &Ctx, a: &CpArgs) -> CmdResult {
    requires_exact(
        "cp",
        "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-",
        a.paths.len(),
        2,
    )?;
    let (src, dst) = (&a.paths[0], &a.paths[1]);
    match (split_arg(src), split_arg(dst)) {
        (Some(_), Some(_)) => Err(err("copying between containers is not supported")),
        (None, None) => Err(err("must specify at least one container source")),
        (Some((c, p)), None) => from_container(ctx, a, c, p, dst).await,
        (None, Some((c, p))) => to_container(ctx, a, src, c, p).await,
    }
}

fn base(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

fn content_only(p: &str) -> bool {
    p.ends_with("/.") || p == "."
}

async fn from_container(ctx: &Ctx, a: &CpArgs, container: &str, src: &str, dst: &str) -> CmdResult {
    if src.is_empty() {
        return Err(err("source can not be empty"));
    }
    let mut src = if src.starts_with('/') {
        src.to_string()
    } else {
        format!("/{src}")
    };
    if a.follow_link {
        if let Some(st) = stat(ctx, container, &src).await? {
            if st.is_link() && !st.link_target.is_empty() {
                src = st.link_target;
            }
        }
    }
    let q = Query::new().add("path", &src);
    let resp = ctx
        .client
        .request(
            Method::GET,
            &format!("/containers/{container}/archive"),
            &q,
            Payload::None,
            &[],
        )
        .await?;
    let st = decode_stat(resp.headers().get("X-Docker-Container-Path-Stat"));
    let mut body = resp.into_body();
    if dst == "-" {
        let mut out = tokio::io::stdout();
        while let Some(chunk) = next_chunk(&mut body).await? {
            out.write_all(&chunk).await?;
        }
        out.flush().await?;
        return Ok(0);
    }

    // Where the archive goes, and under which name its top entry lands.
    let dst_path = PathBuf::from(dst);
    let dst_meta = std::fs::metadata(&dst_path).ok();
    let (into, rename): (PathBuf, Option<String>) = match &dst_meta {
        Some(m) if m.is_dir() => (dst_path.clone(), None),
        Some(_) if st.is_dir() => {
            return Err(err(format!(
                "cannot copy directory to existing file \"{dst}\""
            )))
        }
        Some(_) => (parent_of(&dst_path), Some(base(dst))),
        None => {
            if dst.ends_with('/') {
                return Err(err(format!("destination \"{dst}\" must be a directory")));
            }
            let parent = parent_of(&dst_path);
            if !parent.is_dir() {
                return Err(err(format!(
                    "lstat {}: no such file or directory",
                    parent.display()
                )));
            }
            (parent, Some(base(dst)))
        }
    };
    let top = if content_only(&src) {
        ".".to_string()
    } else {
        base(&src)
    };
    let (reader, writer) = std::io::pipe()?;
    let into2 = into.clone();
    let top2 = top.clone();
    let keep_owners = a.archive;
    let worker =
        std::thread::spawn(move || extract_local(reader, &into2, &top2, rename, keep_owners));
    let mut w = tokio::fs::File::from_std(File::from(OwnedFd::from(writer)));
    let mut copied = 0u64;
    let mut send_err = None;
    while let Some(chunk) = next_chunk(&mut body).await? {
        copied += chunk.len() as u64;
        if let Err(e) = w.write_all(&chunk).await {
            send_err = Some(e);
            break;
        }
    }
    let _ = w.flush().await;
    drop(w);
    let res = worker
        .join()
        .map_err(|_| err("extracting the archive failed"))?;
    res.map_err(|e| err(e.to_string()))?;
    if let Some(e) = send_err {
        return Err(e.into());
    }
    if !a.quiet {
        eprintln!(
            "Successfully copied {} to {dst}",
            berth_api::units::human_size(copied as f64)
        );
    }
    Ok(0)
}

fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(x) if !x.as_os_str().is_empty() => x.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Unpacks into `into`; with `rename`, the top entry `top` is unpacked in
/// a scratch directory first and moved to `into/rename`. Files belong to
/// the user running `cp` unless `keep_owners` (`-a`) keeps the container's
/// uid/gid, as docker's documentation describes.
fn extract_local(
    r: impl std::io::Read,
    into: &Path,
    top: &str,
    rename: Option<String>,
    keep_owners: bool,
) -> std::io::Result<()> {
    let unpack = |dir: &Path, r: &mut dyn std::io::Read| -> std::io::Result<()> {
        let mut ar = tar::Archive::new(r);
        ar.set_preserve_ownerships(keep_owners);
        ar.set_preserve_permissions(true);
        ar.set_preserve_mtime(true);
        ar.set_overwrite(true);
        ar.unpack(dir)
    };
    let mut r = r;
    let Some(new_name) = rename.filter(|n| n != top || top == ".") else {
        return unpack(into, &mut r);
    };
    let scratch = into.join(format!(".berth-cp-{}", std::process::id()));
    std::fs::create_dir(&scratch)?;
    let res = (|| {
        unpack(&scratch, &mut r)?;
        let from = if top == "." {
            scratch.clone()
        } else {
            scratch.join(top)
        };
        let to = into.join(&new_name);
        if top == "." {
            // `dir/.` to a new name: the directory is the scratch itself.
            std::fs::rename(&from, &to)
        } else {
            std::fs::rename(&from, &to)
        }
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    res
}

async fn to_container(ctx: &Ctx, a: &CpArgs, src: &str, container: &str, dst: &str) -> CmdResult {
    if dst.is_empty() {
        return Err(err("destination can not be empty"));
    }
    let mut dst = if dst.starts_with('/') {
        dst.to_string()
    } else {
        format!("/{dst}")
    };
    let mut dst_stat = stat(ctx, container, &dst).await?;
    if let Some(st) = &dst_stat {
        if st.is_link() && !st.link_target.is_empty() {
            dst = st.link_target.clone();
            dst_stat = stat(ctx, container, &dst).await?;
        }
    }
    let dst_exists = dst_stat.is_some();
    let dst_is_dir = dst_stat.as_ref().is_some_and(PathStat::is_dir);

    let (target_dir, body, shown) = if src == "-" {
        if !dst_is_dir {
            return Err(err(format!(
                "destination \"{container}:{dst}\" must be a directory"
            )));
        }
        (dst.clone(), reader_body(tokio::io::stdin()), String::new())
    } else {
        let src_path = PathBuf::from(src);
        let meta = if a.follow_link {
            std::fs::metadata(&src_path)
        } else {
            std::fs::symlink_metadata(&src_path)
        }
        .map_err(|_| err(format!("lstat {src}: no such file or directory")))?;
        let src_is_dir = meta.is_dir();
        let src_base = if content_only(src) {
            ".".to_string()
        } else {
            base(src)
        };
        let (target_dir, name) = if dst_exists && dst_is_dir {
            (dst.clone(), src_base.clone())
        } else if dst_exists {
            if src_is_dir {
                return Err(err(format!(
                    "cannot copy directory to existing file \"{container}:{dst}\""
                )));
            }
            (parent_str(&dst), base(&dst))
        } else {
            if dst.ends_with('/') {
                return Err(err(format!(
                    "destination \"{container}:{dst}\" must be a directory"
                )));
            }
            (parent_str(&dst), base(&dst))
        };
        let (reader, writer) = std::io::pipe()?;
        let follow = a.follow_link;
        let src_owned = src_path.clone();
        std::thread::spawn(move || {
            let w = std::io::BufWriter::with_capacity(256 * 1024, writer);
            if let Err(e) = write_local_tar(&src_owned, &name, follow, w) {
                eprintln!("berth cp: {e}");
            }
        });
        let r = tokio::fs::File::from_std(File::from(OwnedFd::from(reader)));
        (target_dir, reader_body(r), format!("{container}:{dst}"))
    };
    let q = Query::new()
        .add("path", &target_dir)
        .add("noOverwriteDirNonDir", "true")
        .add_if(a.archive, "copyUIDGID", "true");
    ctx.client
        .request(
            Method::PUT,
            &format!("/containers/{container}/archive"),
            &q,
            Payload::Stream("application/x-tar", body),
            &[],
        )
        .await?;
    if !a.quiet && !shown.is_empty() {
        let size = dir_bytes(Path::new(src));
        eprintln!(
            "Successfully copied {} to {shown}",
            berth_api::units::human_size(size as f64)
        );
    }
    Ok(0)
}

fn parent_str(p: &str) -> String {
    let t = p.trim_end_matches('/');
    match t.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => t[..i].to_string(),
    }
}

/// A local path as a tar whose top entry is `name` (`.` for contents).
fn write_local_tar(
    src: &Path,
    name: &str,
    follow_top: bool,
    w: impl std::io::Write,
) -> std::io::Result<()> {
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    let meta = if follow_top {
        std::fs::metadata(src)?
    } else {
        std::fs::symlink_metadata(src)?
    };
    if meta.is_dir() {
        b.append_dir_all(name, src)?;
    } else if meta.file_type().is_symlink() {
        let mut h = tar::Header::new_gnu();
        h.set_metadata(&meta);
        h.set_size(0);
        b.append_link(&mut h, name, std::fs::read_link(src)?)?;
    } else {
        let mut f = File::open(src)?;
        let mut h = tar::Header::new_gnu();
        h.set_metadata(&meta);
        b.append_data(&mut h, name, &mut f)?;
    }
    b.into_inner()?.flush()
}

fn dir_bytes(p: &Path) -> u64 {
    let Ok(m) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !m.is_dir() {
        return m.len();
    }
    std::fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| dir_bytes(&e.path())).sum())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args() {
        assert_eq!(split_arg("c:/tmp"), Some(("c", "/tmp")));
        assert_eq!(split_arg("/a:b"), None);
        assert_eq!(split_arg("./a:b"), None);
        assert_eq!(base("/a/b/"), "b");
        assert_eq!(parent_str("/a/b"), "/a");
        assert_eq!(parent_str("/a"), "/");
        assert!(content_only("/d/."));
    }
}

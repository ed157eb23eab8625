//! The build context: the tar the client sent, unpacked once into a
//! directory, and the sources of COPY/ADD found in it (or in a stage's
//! root): paths checked never to leave it, globs expanded.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::fsutil::scoped_join;
use crate::ignore::glob_regex;
use crate::BuildError;

/// Unpacks a (plain, gzip or zstd) tar context into `dest`. Entries that
/// would land outside `dest` are refused by the tar reader.
pub fn unpack_context<R: Read>(r: R, dest: &Path) -> Result<(), BuildError> {
    let (_, plain) = berth_image::compression::decompress(r)
        .map_err(|e| BuildError::Syntax(format!("reading the build context: {e}")))?;
    let mut ar = tar::Archive::new(plain);
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_overwrite(true);
    ar.set_unpack_xattrs(false);
    ar.unpack(dest)
        .map_err(|e| BuildError::Syntax(format!("unpacking the build context: {e}")))
}

/// Where a source lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SourceRoot {
    /// The build context.
    Context,
    /// Another stage or image (`--from`).
    Stage,
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Lexical check that `src` stays in the context (`..` may not climb out).
fn check_inside(src: &str) -> Result<(), BuildError> {
    let mut depth: i64 = 0;
    for c in src.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return Err(BuildError::Syntax(format!(
                        "Forbidden path outside the build context: {src} ()"
                    )));
                }
            }
            _ => depth += 1,
        }
    }
    Ok(())
}

fn walk(root: &Path, rel: &str, out: &mut Vec<String>) {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in names {
        let p = if rel.is_empty() {
            n.clone()
        } else {
            format!("{rel}/{n}")
        };
        let is_dir = std::fs::symlink_metadata(root.join(&p))
            .map(|m| m.is_dir())
            .unwrap_or(false);
        out.push(p.clone());
        if is_dir {
            walk(root, &p, out);
        }
    }
}

/// One resolved source: where it is on disk and its name (for a file
/// copied into a directory).
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) path: PathBuf,
    pub(crate) name: String,
    /// A local archive ADD unpacks (context files only).
    pub(crate) extract: bool,
}

/// Resolves the sources of COPY/ADD under `root`.
pub(crate) fn resolve_sources(
    root: &Path,
    srcs: &[String],
    kind: SourceRoot,
    cmd: &str,
) -> Result<Vec<Source>, BuildError> {
    let mut out = Vec::new();
    for src in srcs {
        if kind == SourceRoot::Context {
            check_inside(src)?;
        }
        let cleaned = crate::ignore::clean(src);
        if has_glob(&cleaned) {
            let re = glob_regex(&cleaned)
                .map_err(|e| BuildError::Syntax(format!("bad pattern {src}: {e}")))?;
            let mut all = Vec::new();
            walk(root, "", &mut all);
            let before = out.len();
            for p in all.into_iter().filter(|p| re.is_match(p)) {
                let path = scoped_join(root, &p, false)
                    .map_err(|e| BuildError::Internal(e.to_string()))?;
                let name = p.rsplit('/').next().unwrap_or(&p).to_string();
                out.push(Source {
                    path,
                    name,
                    extract: kind == SourceRoot::Context,
                });
            }
            if out.len() == before {
                return Err(BuildError::NotFound(format!(
                    "{cmd} failed: no source files were specified"
                )));
            }
            continue;
        }
        let path =
            scoped_join(root, &cleaned, true).map_err(|e| BuildError::Internal(e.to_string()))?;
        if std::fs::symlink_metadata(&path).is_err() {
            return Err(BuildError::NotFound(match kind {
                SourceRoot::Context => format!(
                    "{cmd} failed: file not found in build context or excluded by .dockerignore: stat {cleaned}: file does not exist"
                ),
                SourceRoot::Stage => {
                    format!("{cmd} failed: stat {cleaned}: file does not exist")
                }
            }));
        }
        let name = cleaned.rsplit('/').next().unwrap_or("").to_string();
        out.push(Source {
            path,
            name,
            extract: kind == SourceRoot::Context,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("d/e")).unwrap();
        std::fs::write(r.join("a.txt"), "a").unwrap();
        std::fs::write(r.join("b.txt"), "b").unwrap();
        std::fs::write(r.join("d/e/c.txt"), "c").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", r.join("evil")).unwrap();
        let s = resolve_sources(r, &["*.txt".into()], SourceRoot::Context, "COPY").unwrap();
        assert_eq!(s.len(), 2);
        let s = resolve_sources(r, &["d".into()], SourceRoot::Context, "COPY").unwrap();
        assert_eq!(s[0].path, r.join("d"));
        assert!(
            resolve_sources(r, &["../x".into()], SourceRoot::Context, "COPY")
                .unwrap_err()
                .to_string()
                .contains("outside the build context")
        );
        let e = resolve_sources(r, &["nope".into()], SourceRoot::Context, "COPY").unwrap_err();
        assert!(e.to_string().contains("file not found in build context"));
        // A symlink to an absolute path resolves inside the context.
        let e = resolve_sources(r, &["evil".into()], SourceRoot::Context, "COPY").unwrap_err();
        assert!(e.to_string().contains("stat evil"));
    }
}

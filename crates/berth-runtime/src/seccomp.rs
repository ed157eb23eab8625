//! Seccomp profiles in Docker's format, turned into the OCI runtime spec's
//! `linux.seccomp` for one container.
//!
//! Docker's profile format is OCI's plus three things the runtime does not
//! know: an `archMap` (native architecture → its sub-architectures), rules
//! with a single `name`, and `includes`/`excludes` filters that keep a rule
//! only for some capabilities, architectures or kernels. [`resolve`] applies
//! those for the container's bounding set, the host's architecture and its
//! kernel, as dockerd does when it writes a container's spec.
//!
//! `seccomp_default.json` is Docker's default profile, unchanged (from
//! `github.com/moby/profiles/seccomp`, Apache-2.0, as vendored by moby in
//! 2026): everything not allowed fails with EPERM; `clone3` fails with ENOSYS
//! so that libc falls back to `clone`, whose namespace flags are filtered.

use serde::Deserialize;
use serde_json::{json, Value};

/// Docker's default profile, in Docker's format.
pub fn default_profile() -> &'static str {
    include_str!("seccomp_default.json")
}

/// The host facts a profile's filters are evaluated against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The architecture in Go's naming (`amd64`, `arm64`, …), which is what
    /// profiles use in `includes.arches`.
    pub arch: &'static str,
    /// Kernel version, major and minor.
    pub kernel: (u64, u64),
}

impl Target {
    /// This host.
    pub fn host() -> Target {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        Target {
            arch: go_arch(std::env::consts::ARCH),
            kernel: parse_kernel(&release).unwrap_or((0, 0)),
        }
    }
}

/// Rust's architecture names to Go's, which Docker's profiles use.
fn go_arch(rust: &str) -> &'static str {
    match rust {
        "x86_64" => "amd64",
        "x86" => "x86",
        "aarch64" => "arm64",
        "arm" => "arm",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loongarch64",
        "mips64" => "mips64",
        _ => "unknown",
    }
}

/// Go architecture names to the seccomp architecture whose `archMap` entry
/// applies.
fn seccomp_arch(go: &str) -> Option<&'static str> {
    Some(match go {
        "amd64" => "SCMP_ARCH_X86_64",
        "x86" => "SCMP_ARCH_X86",
        "arm64" => "SCMP_ARCH_AARCH64",
        "arm" => "SCMP_ARCH_ARM",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "s390x" => "SCMP_ARCH_S390X",
        "s390" => "SCMP_ARCH_S390",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        "loongarch64" => "SCMP_ARCH_LOONGARCH64",
        "mips64" => "SCMP_ARCH_MIPS64",
        _ => return None,
    })
}

/// `"6.1.0-13-amd64"` → `(6, 1)`.
fn parse_kernel(release: &str) -> Option<(u64, u64)> {
    let mut parts = release.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    #[serde(default)]
    default_action: String,
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    arch_map: Vec<ArchMap>,
    #[serde(default)]
    flags: Vec<String>,
    listener_path: Option<String>,
    listener_metadata: Option<String>,
    #[serde(default)]
    syscalls: Vec<Syscall>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Syscall {
    #[serde(default)]
    name: String,
    #[serde(default)]
    names: Vec<String>,
    action: String,
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<Value>>,
    includes: Option<Filter>,
    excludes: Option<Filter>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    min_kernel: Option<String>,
}

fn parse_min_kernel(v: &str) -> Result<Option<(u64, u64)>, String> {
    if v.is_empty() {
        return Ok(None);
    }
    let bad = || format!("invalid kernel version: \"{v}\", expected \"<kernel>.<major>\"");
    let (a, b) = v.split_once('.').ok_or_else(bad)?;
    let k = (
        a.parse::<u8>().map_err(|_| bad())? as u64,
        b.parse::<u8>().map_err(|_| bad())? as u64,
    );
    if k == (0, 0) {
        return Err(bad());
    }
    Ok(Some(k))
}

/// Turns a profile in Docker's format into the OCI `linux.seccomp` object
/// for a container whose bounding set is `caps`; `None` when the profile
/// asks for no filter (no default action and no rules). Errors carry
/// Docker's texts.
pub fn resolve(profile: &str, caps: &[String], target: &Target) -> Result<Option<Value>, String> {
    let p: Profile = serde_json::from_str(profile)
        .map_err(|e| format!("Decoding seccomp profile failed: {e}"))?;
    if p.default_action.is_empty() && p.syscalls.is_empty() {
        return Ok(None);
    }
    if !p.architectures.is_empty() && !p.arch_map.is_empty() {
        return Err("both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'".into());
    }
    let mut arches = p.architectures.clone();
    if let Some(native) = seccomp_arch(target.arch) {
        if let Some(m) = p.arch_map.iter().find(|m| m.architecture == native) {
            arches.push(m.architecture.clone());
            arches.extend(m.sub_architectures.iter().flatten().cloned());
        }
    }
    let has = |c: &String| caps.contains(c);
    let mut rules = Vec::new();
    for call in &p.syscalls {
        let names = if call.name.is_empty() {
            call.names.clone()
        } else if !call.names.is_empty() {
            return Err("both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'".into());
        } else {
            vec![call.name.clone()]
        };
        if let Some(ex) = &call.excludes {
            if ex.arches.iter().any(|a| a == target.arch) || ex.caps.iter().any(has) {
                continue;
            }
            if let Some(k) = parse_min_kernel(ex.min_kernel.as_deref().unwrap_or(""))? {
                if target.kernel >= k {
                    continue;
                }
            }
        }
        if let Some(inc) = &call.includes {
            if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == target.arch) {
                continue;
            }
            if !inc.caps.iter().all(has) {
                continue;
            }
            if let Some(k) = parse_min_kernel(inc.min_kernel.as_deref().unwrap_or(""))? {
                if target.kernel < k {
                    continue;
                }
            }
        }
        let mut rule = json!({"names": names, "action": call.action});
        if let Some(e) = call.errno_ret {
            rule["errnoRet"] = json!(e);
        }
        if let Some(args) = call.args.as_ref().filter(|a| !a.is_empty()) {
            rule["args"] = json!(args);
        }
        rules.push(rule);
    }
    let mut out = json!({"defaultAction": p.default_action, "syscalls": rules});
    if let Some(e) = p.default_errno_ret {
        out["defaultErrnoRet"] = json!(e);
    }
    if !arches.is_empty() {
        out["architectures"] = json!(arches);
    }
    if !p.flags.is_empty() {
        out["flags"] = json!(p.flags);
    }
    if let Some(l) = &p.listener_path {
        out["listenerPath"] = json!(l);
    }
    if let Some(m) = &p.listener_metadata {
        out["listenerMetadata"] = json!(m);
    }
    // The runtime's own parser is the judge of actions, operators and
    // architectures: a profile it would refuse fails here, at create.
    serde_json::from_value::<oci_spec::runtime::LinuxSeccomp>(out.clone())
        .map_err(|e| format!("Decoding seccomp profile failed: {e}"))?;
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AMD64: Target = Target {
        arch: "amd64",
        kernel: (6, 1),
    };

    fn caps(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| s.to_string()).collect()
    }

    fn rules_for<'a>(v: &'a Value, name: &str) -> Vec<&'a Value> {
        v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["names"].as_array().unwrap().iter().any(|n| n == name))
            .collect()
    }

    #[test]
    fn default_profile_for_default_caps() {
        let v = resolve(default_profile(), &caps(crate::spec::DEFAULT_CAPS), &AMD64)
            .unwrap()
            .unwrap();
        assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(v["defaultErrnoRet"], 1);
        assert_eq!(
            v["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        // No rule at all for what the defaults forbid.
        for forbidden in [
            "keyctl",
            "add_key",
            "unshare",
            "mount",
            "setns",
            "init_module",
            "finit_module",
            "reboot",
            "bpf",
        ] {
            assert!(rules_for(&v, forbidden).is_empty(), "{forbidden} allowed");
        }
        // clone only without namespace flags; clone3 answers ENOSYS.
        let clone = rules_for(&v, "clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(clone[0]["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        assert_eq!(clone[0]["args"][0]["index"], 0);
        let clone3 = rules_for(&v, "clone3");
        assert_eq!(clone3[0]["action"], "SCMP_ACT_ERRNO");
        assert_eq!(clone3[0]["errnoRet"], 38);
        // Architecture-specific rules for amd64 only.
        assert_eq!(rules_for(&v, "arch_prctl").len(), 1);
        assert!(rules_for(&v, "s390_runtime_instr").is_empty());
        // chroot comes with CAP_SYS_CHROOT, which is in Docker's set.
        assert_eq!(rules_for(&v, "chroot").len(), 1);
        // The runtime accepts it.
        serde_json::from_value::<oci_spec::runtime::LinuxSeccomp>(v).unwrap();
    }

    #[test]
    fn capabilities_open_their_syscalls() {
        let mut c = caps(crate::spec::DEFAULT_CAPS);
        c.push("CAP_SYS_ADMIN".into());
        c.push("CAP_SYS_MODULE".into());
        let v = resolve(default_profile(), &c, &AMD64).unwrap().unwrap();
        assert!(!rules_for(&v, "unshare").is_empty());
        assert!(!rules_for(&v, "mount").is_empty());
        assert!(!rules_for(&v, "finit_module").is_empty());
        // With SYS_ADMIN, clone is allowed whole and clone3 is not ENOSYS.
        assert!(rules_for(&v, "clone")
            .iter()
            .all(|r| r.get("args").is_none()));
        assert!(rules_for(&v, "clone3")
            .iter()
            .all(|r| r["action"] == "SCMP_ACT_ALLOW"));
        // Still no keyctl: no capability opens it.
        assert!(rules_for(&v, "keyctl").is_empty());
    }

    #[test]
    fn min_kernel_and_arch_filters() {
        let old = Target {
            arch: "arm64",
            kernel: (4, 4),
        };
        let v = resolve(default_profile(), &[], &old).unwrap().unwrap();
        // ptrace needs 4.8 without CAP_SYS_PTRACE.
        assert!(rules_for(&v, "ptrace").is_empty());
        assert_eq!(
            v["architectures"],
            json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"])
        );
        assert_eq!(rules_for(&v, "cacheflush").len(), 1);
        assert!(rules_for(&v, "arch_prctl").is_empty());
        let new = Target {
            arch: "arm64",
            kernel: (5, 10),
        };
        let v = resolve(default_profile(), &[], &new).unwrap().unwrap();
        assert_eq!(rules_for(&v, "ptrace").len(), 1);
    }

    #[test]
    fn custom_profiles_and_errors() {
        assert_eq!(resolve("{}", &[], &AMD64).unwrap(), None);
        let v = resolve(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"mkdir","action":"SCMP_ACT_ERRNO"}]}"#,
            &[],
            &AMD64,
        )
        .unwrap()
        .unwrap();
        assert_eq!(v["syscalls"][0]["names"], json!(["mkdir"]));
        assert!(v.get("architectures").is_none());
        let e = resolve("not json", &[], &AMD64).unwrap_err();
        assert!(e.starts_with("Decoding seccomp profile failed: "), "{e}");
        let e = resolve(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#,
            &[],
            &AMD64,
        )
        .unwrap_err();
        assert!(e.contains("use either 'architectures' or 'archMap'"), "{e}");
        let e = resolve(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ERRNO"}]}"#,
            &[],
            &AMD64,
        )
        .unwrap_err();
        assert!(e.contains("use either 'name' or 'names'"), "{e}");
        let e = resolve(r#"{"defaultAction":"SCMP_ACT_MAYBE"}"#, &[], &AMD64).unwrap_err();
        assert!(e.starts_with("Decoding seccomp profile failed"), "{e}");
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(parse_kernel("6.18.44-fc-v657"), Some((6, 18)));
        assert_eq!(parse_kernel("5.10.0-28-amd64\n"), Some((5, 10)));
        assert_eq!(parse_min_kernel("4.8").unwrap(), Some((4, 8)));
        assert!(parse_min_kernel("0.0").is_err());
        assert!(parse_min_kernel("4").is_err());
    }
}

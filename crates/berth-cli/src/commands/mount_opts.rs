//! `-v/--volume` and `--mount` as the docker CLI sends them: `-v /path`
//! becomes an anonymous volume in `Config.Volumes`, other `-v` specs go to
//! `HostConfig.Binds` (relative host paths made absolute), and `--mount`
//! CSV becomes a `HostConfig.Mounts` object.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::format::units::ram_in_bytes;

/// Splits `-v` specs into binds and anonymous volume paths.
pub(crate) fn split_volumes(specs: &[String]) -> Result<(Vec<String>, Vec<String>), String> {
    let mut binds = Vec::new();
    let mut anon = Vec::new();
    for spec in specs {
        if spec.is_empty() {
            return Err("invalid empty volume spec".into());
        }
        let mut parts: Vec<String> = spec.split(':').map(str::to_string).collect();
        if parts.len() == 1 {
            anon.push(spec.clone());
            continue;
        }
        // docker ≥ 23 turns a relative host path (`./x`, `../x`, `.`) into
        // an absolute one; a bare name stays a volume name.
        let src = &parts[0];
        if src == "." || src == ".." || src.starts_with("./") || src.starts_with("../") {
            let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
            parts[0] = clean(&cwd.join(src).to_string_lossy());
        } else if let Some(rest) = src.strip_prefix('~') {
            if let Some(home) = std::env::var_os("HOME") {
                parts[0] = format!("{}{rest}", home.to_string_lossy());
            }
        }
        binds.push(parts.join(":"));
    }
    Ok((binds, anon))
}

fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

fn parse_bool(key: &str, v: Option<&str>) -> Result<bool, String> {
    match v.unwrap_or("true").to_ascii_lowercase().as_str() {
        "1" | "true" | "t" => Ok(true),
        "0" | "false" | "f" => Ok(false),
        other => Err(format!("invalid value for {key}: {other}")),
    }
}

/// Splits a CSV line, honouring double quotes (`"a,b"`).
fn csv_fields(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for ch in s.chars() {
        match ch {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Parses one `--mount` value into Docker's `Mount` object.
pub(crate) fn parse_mount(spec: &str) -> Result<Value, String> {
    let mut kind = "volume".to_string();
    let mut m = Map::new();
    let mut bind = Map::new();
    let mut vol = Map::new();
    let mut tmpfs = Map::new();
    let mut labels = BTreeMap::new();
    let mut opts = BTreeMap::new();
    let mut driver = None;
    for field in csv_fields(spec) {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.to_string())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need = || {
            val.clone()
                .ok_or_else(|| format!("invalid field '{field}' must be a key=value pair"))
        };
        match key.as_str() {
            "readonly" | "ro" => {
                m.insert("ReadOnly".into(), json!(parse_bool(&key, val.as_deref())?));
            }
            "volume-nocopy" => {
                vol.insert("NoCopy".into(), json!(parse_bool(&key, val.as_deref())?));
            }
            "bind-nonrecursive" => {
                bind.insert(
                    "NonRecursive".into(),
                    json!(parse_bool(&key, val.as_deref())?),
                );
            }
            "type" => kind = need()?,
            "source" | "src" => {
                m.insert("Source".into(), json!(need()?));
            }
            "target" | "dst" | "destination" => {
                m.insert("Target".into(), json!(need()?));
            }
            "consistency" => {
                m.insert("Consistency".into(), json!(need()?));
            }
            "bind-propagation" => {
                bind.insert("Propagation".into(), json!(need()?));
            }
            "volume-driver" => driver = Some(need()?),
            "volume-label" => {
                let v = need()?;
                let (k, val) = v.split_once('=').unwrap_or((&v, ""));
                labels.insert(k.to_string(), val.to_string());
            }
            "volume-opt" => {
                let v = need()?;
                let (k, val) = v
                    .split_once('=')
                    .ok_or_else(|| format!("invalid value for {key}: {v}"))?;
                opts.insert(k.to_string(), val.to_string());
            }
            "volume-subpath" => {
                vol.insert("Subpath".into(), json!(need()?));
            }
            "tmpfs-size" => {
                let v = need()?;
                let n = ram_in_bytes(&v).map_err(|_| format!("invalid value for {key}: {v}"))?;
                tmpfs.insert("SizeBytes".into(), json!(n));
            }
            "tmpfs-mode" => {
                let v = need()?;
                let n = u32::from_str_radix(&v, 8)
                    .map_err(|_| format!("invalid value for {key}: {v}"))?;
                tmpfs.insert("Mode".into(), json!(n));
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    if !m.contains_key("Target") {
        return Err("target is required".into());
    }
    if !labels.is_empty() {
        vol.insert("Labels".into(), json!(labels));
    }
    if driver.is_some() || !opts.is_empty() {
        vol.insert(
            "DriverConfig".into(),
            json!({"Name": driver.unwrap_or_default(), "Options": opts}),
        );
    }
    match kind.as_str() {
        "bind" if !vol.is_empty() => {
            return Err("cannot mix 'volume-*' options with mount type 'bind'".into())
        }
        "volume" if !bind.is_empty() => {
            return Err("cannot mix 'bind-*' options with mount type 'volume'".into())
        }
        _ => {}
    }
    if !bind.is_empty() {
        m.insert("BindOptions".into(), Value::Object(bind));
    }
    if !vol.is_empty() {
        m.insert("VolumeOptions".into(), Value::Object(vol));
    }
    if !tmpfs.is_empty() {
        m.insert("TmpfsOptions".into(), Value::Object(tmpfs));
    }
    m.insert("Type".into(), json!(kind));
    Ok(Value::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_split() {
        let (b, a) = split_volumes(&["/anon".into(), "v:/d:ro".into(), "/h:/c".into()]).unwrap();
        assert_eq!(a, ["/anon"]);
        assert_eq!(b, ["v:/d:ro", "/h:/c"]);
    }

    #[test]
    fn mount_csv() {
        let m = parse_mount("type=bind,src=/h,dst=/c,readonly,bind-propagation=rshared").unwrap();
        assert_eq!(
            m,
            json!({"Type":"bind","Source":"/h","Target":"/c","ReadOnly":true,"BindOptions":{"Propagation":"rshared"}})
        );
        let m = parse_mount("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770").unwrap();
        assert_eq!(
            m["TmpfsOptions"],
            json!({"SizeBytes":1048576,"Mode":0o1770})
        );
        let m = parse_mount("source=v,target=/d,volume-opt=type=tmpfs,volume-nocopy").unwrap();
        assert_eq!(
            m["VolumeOptions"]["DriverConfig"]["Options"]["type"],
            "tmpfs"
        );
        assert_eq!(m["VolumeOptions"]["NoCopy"], true);
        assert_eq!(
            parse_mount("type=volume").unwrap_err(),
            "target is required"
        );
        assert!(parse_mount("bogus=1,target=/x").is_err());
    }
}

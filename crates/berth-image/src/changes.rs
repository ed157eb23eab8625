//! `--change` instructions of `import` and `commit`: the Dockerfile
//! instructions that only touch the image config.

use std::collections::BTreeMap;

use berth_api::container::ContainerConfig;
use berth_api::StrSlice;
use serde_json::Value;

use crate::ImageError;

/// Instructions Docker accepts in `--change`.
const ALLOWED: &[&str] = &[
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Applies each change, in order, to `config`.
pub fn apply_changes(changes: &[String], config: &mut ContainerConfig) -> Result<(), ImageError> {
    let mut cmd_set = false;
    for change in changes {
        for line in change
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            apply_one(line, config, &mut cmd_set)?;
        }
    }
    Ok(())
}

fn apply_one(
    line: &str,
    config: &mut ContainerConfig,
    cmd_set: &mut bool,
) -> Result<(), ImageError> {
    let (word, rest) = match line.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim()),
        None => (line, ""),
    };
    let instr = word.to_ascii_uppercase();
    if !ALLOWED.contains(&instr.as_str()) {
        return Err(ImageError::BadChange(format!(
            "{instr} is not a valid change command"
        )));
    }
    if rest.is_empty() {
        return Err(ImageError::BadChange(format!(
            "{instr} requires at least one argument"
        )));
    }
    match instr.as_str() {
        "CMD" => {
            config.cmd = Some(command_form(rest, config));
            *cmd_set = true;
        }
        "ENTRYPOINT" => {
            config.entrypoint = Some(command_form(rest, config));
            // As in a Dockerfile: a new entrypoint drops the old command
            // unless a CMD came before it in the same changes.
            if !*cmd_set {
                config.cmd = None;
            }
        }
        "ENV" => {
            let env = config.env.get_or_insert_with(Vec::new);
            for (k, v) in key_values(rest, "ENV")? {
                env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()) && e != &k);
                env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            let labels = config.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in key_values(rest, "LABEL")? {
                labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            let ports = config.exposed_ports.get_or_insert_with(BTreeMap::new);
            for p in rest.split_whitespace() {
                let p = if p.contains('/') {
                    p.to_ascii_lowercase()
                } else {
                    format!("{p}/tcp")
                };
                let num = p.split('/').next().unwrap_or("");
                let valid = num
                    .split('-')
                    .all(|n| n.parse::<u16>().is_ok_and(|v| v > 0));
                if !valid {
                    return Err(ImageError::BadChange(format!(
                        "invalid containerPort: {num}"
                    )));
                }
                ports.insert(p, Value::Object(Default::default()));
            }
        }
        "VOLUME" => {
            let vols = config.volumes.get_or_insert_with(BTreeMap::new);
            let list = json_array(rest)
                .unwrap_or_else(|| rest.split_whitespace().map(str::to_string).collect());
            for v in list {
                vols.insert(v, Value::Object(Default::default()));
            }
        }
        "USER" => config.user = rest.to_string(),
        "WORKDIR" => {
            config.working_dir = if rest.starts_with('/') || config.working_dir.is_empty() {
                rest.to_string()
            } else {
                format!("{}/{}", config.working_dir.trim_end_matches('/'), rest)
            };
        }
        "STOPSIGNAL" => config.stop_signal = Some(rest.to_string()),
        "ONBUILD" => config
            .on_build
            .get_or_insert_with(Vec::new)
            .push(rest.to_string()),
        "HEALTHCHECK" => {
            return Err(ImageError::BadChange(
                "HEALTHCHECK is not supported in --change yet".into(),
            ))
        }
        _ => unreachable!("checked against ALLOWED"),
    }
    Ok(())
}

/// JSON form (`["a","b"]`) or shell form (wrapped in the image's shell).
fn command_form(rest: &str, config: &ContainerConfig) -> StrSlice {
    if let Some(list) = json_array(rest) {
        return StrSlice(list);
    }
    let mut shell = config
        .shell
        .as_ref()
        .map(|s| s.0.clone())
        .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
    shell.push(rest.to_string());
    StrSlice(shell)
}

fn json_array(s: &str) -> Option<Vec<String>> {
    if !s.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(s).ok()
}

/// `k=v k2="v 2"` pairs, or the legacy single `k v` form.
fn key_values(rest: &str, instr: &str) -> Result<Vec<(String, String)>, ImageError> {
    let words = split_words(rest);
    if !words.is_empty() && !words[0].contains('=') {
        // Legacy form: the first word is the key, the rest of the line the value.
        let (k, v) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        if v.trim().is_empty() {
            return Err(ImageError::BadChange(format!(
                "{instr} must have two arguments"
            )));
        }
        return Ok(vec![(k.to_string(), unquote(v.trim()))]);
    }
    words
        .into_iter()
        .map(|w| {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| ImageError::BadChange(format!("{instr} names can not be blank")))?;
            if k.is_empty() {
                return Err(ImageError::BadChange(format!(
                    "{instr} names can not be blank"
                )));
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

/// Splits on whitespace outside quotes and removes the quotes.
fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '"') | (None, '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

fn unquote(s: &str) -> String {
    split_words(s).join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(changes: &[&str]) -> Result<ContainerConfig, ImageError> {
        let mut c = ContainerConfig::default();
        apply_changes(
            &changes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            &mut c,
        )?;
        Ok(c)
    }

    #[test]
    fn config_changes() {
        let c = apply(&[
            r#"CMD ["sh","-c","echo hi"]"#,
            "ENTRYPOINT /bin/run it",
            "ENV A=1 B=\"two words\"",
            "ENV C 3 4",
            "ENV A=override",
            "WORKDIR /srv",
            "WORKDIR app",
            "USER 1000:1000",
            "EXPOSE 80 53/UDP",
            "LABEL a=b \"c d\"=e",
            "VOLUME /data",
            "STOPSIGNAL SIGINT",
        ])
        .unwrap();
        assert_eq!(c.cmd.unwrap().0, vec!["sh", "-c", "echo hi"]);
        assert_eq!(
            c.entrypoint.unwrap().0,
            vec!["/bin/sh", "-c", "/bin/run it"]
        );
        assert_eq!(c.env.unwrap(), vec!["B=two words", "C=3 4", "A=override"]);
        assert_eq!(c.working_dir, "/srv/app");
        assert_eq!(c.user, "1000:1000");
        let ports: Vec<_> = c.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(ports, vec!["53/udp", "80/tcp"]);
        let labels = c.labels.unwrap();
        assert_eq!(labels["a"], "b");
        assert_eq!(labels["c d"], "e");
        assert!(c.volumes.unwrap().contains_key("/data"));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
    }

    #[test]
    fn entrypoint_drops_an_earlier_command() {
        let mut c = ContainerConfig {
            cmd: Some(StrSlice(vec!["sh".into()])),
            ..Default::default()
        };
        apply_changes(&[r#"ENTRYPOINT ["/bin/echo"]"#.into()], &mut c).unwrap();
        assert!(c.cmd.is_none());
        apply_changes(
            &[r#"CMD ["hi"]"#.into(), r#"ENTRYPOINT ["/bin/echo"]"#.into()],
            &mut c,
        )
        .unwrap();
        assert_eq!(c.cmd.unwrap().0, vec!["hi"]);
    }

    #[test]
    fn refused_changes() {
        assert_eq!(
            apply(&["ADD . /"]).unwrap_err().to_string(),
            "ADD is not a valid change command"
        );
        assert_eq!(
            apply(&["FROM x"]).unwrap_err().to_string(),
            "FROM is not a valid change command"
        );
        assert!(apply(&["CMD"]).is_err());
        assert!(apply(&["EXPOSE abc"]).is_err());
        assert!(apply(&["ENV =x"]).is_err());
    }
}

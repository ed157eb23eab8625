//! Usage errors in docker's words: `unknown flag: --x`, `invalid argument
//! "v" for "-a, --attach" flag: …`, each followed by the command's usage line
//! and the `--help` hint (exit 125), and `'berth ps' accepts no arguments`
//! (exit 1).

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// docker's `Use` line of each command, after the command path.
pub(crate) fn usage_line(path: &str) -> &'static str {
    match path {
        "run" | "create" | "container run" | "container create" => {
            "[OPTIONS] IMAGE [COMMAND] [ARG...]"
        }
        "images" | "image ls" => "[OPTIONS] [REPOSITORY[:TAG]]",
        "pull" | "image pull" => "[OPTIONS] NAME[:TAG|@DIGEST]",
        "history" | "image history" => "[OPTIONS] IMAGE",
        "import" | "image import" => "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
        "inspect" => "[OPTIONS] NAME|ID [NAME|ID...]",
        "container inspect" => "[OPTIONS] CONTAINER [CONTAINER...]",
        "image inspect" | "rmi" | "image rm" | "save" | "image save" => {
            "[OPTIONS] IMAGE [IMAGE...]"
        }
        "kill" | "rm" | "restart" | "start" | "stop" | "container kill" | "container rm"
        | "container restart" | "container start" | "container stop" => {
            "[OPTIONS] CONTAINER [CONTAINER...]"
        }
        "logs" | "container logs" => "[OPTIONS] CONTAINER",
        "rename" | "container rename" => "CONTAINER NEW_NAME",
        "tag" | "image tag" => "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
        "wait" | "container wait" | "pause" | "container pause" | "unpause"
        | "container unpause" => "CONTAINER [CONTAINER...]",
        "exec" | "container exec" => "[OPTIONS] CONTAINER COMMAND [ARG...]",
        "attach" | "container attach" => "[OPTIONS] CONTAINER",
        "top" | "container top" => "CONTAINER [ps OPTIONS]",
        "stats" | "container stats" => "[OPTIONS] [CONTAINER...]",
        "update" | "container update" => "[OPTIONS] CONTAINER [CONTAINER...]",
        "port" | "container port" => "CONTAINER [PRIVATE_PORT[/PROTO]]",
        "events" | "system events" => "[OPTIONS]",
        "container" | "image" | "system" | "network" | "volume" | "builder" | "completion" => {
            "COMMAND"
        }
        "" => "[OPTIONS] COMMAND",
        _ => "[OPTIONS]",
    }
}

/// The command path (`run`, `container ls`) named by the arguments, with
/// aliases resolved to the canonical name.
pub(crate) fn command_path(root: &clap::Command, args: &[OsString]) -> String {
    let mut path = Vec::new();
    let mut cmd = root;
    let mut it = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = it.next() {
        if arg == "--" {
            break;
        }
        if arg.starts_with('-') {
            // Global flags taking a value.
            if path.is_empty() && matches!(arg.as_str(), "-H" | "--host" | "-l" | "--log-level") {
                it.next();
            }
            continue;
        }
        match cmd.find_subcommand(&arg) {
            Some(sub) => {
                path.push(sub.get_name().to_string());
                cmd = sub;
                if !sub.has_subcommands() {
                    break;
                }
            }
            None => break,
        }
    }
    path.join(" ")
}

/// The first argument that is not a global flag (or its value).
fn first_word(args: &[OsString]) -> Option<String> {
    let mut it = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(arg) = it.next() {
        if matches!(arg.as_ref(), "-H" | "--host" | "-l" | "--log-level") {
            it.next();
        } else if !arg.starts_with('-') {
            return Some(arg.into_owned());
        }
    }
    None
}

fn context_str(e: &clap::Error, kind: ContextKind) -> Option<String> {
    match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => v.first().cloned(),
        _ => None,
    }
}

/// `"-a, --attach"` for the flag named in a clap error (`--attach <ATTACH>`).
fn flag_names(sub: Option<&clap::Command>, shown: &str) -> String {
    let long = shown
        .split([' ', '[', '='])
        .next()
        .unwrap_or(shown)
        .trim_start_matches('-')
        .to_string();
    let arg = sub.and_then(|c| {
        c.get_arguments().find(|a| {
            a.get_long() == Some(long.as_str())
                || a.get_short().map(String::from) == Some(long.clone())
        })
    });
    match arg {
        Some(a) => match (a.get_short(), a.get_long()) {
            (Some(s), Some(l)) => format!("-{s}, --{l}"),
            (None, Some(l)) => format!("--{l}"),
            (Some(s), None) => format!("-{s}"),
            (None, None) => shown.to_string(),
        },
        None => format!("--{long}"),
    }
}

/// Prints a clap parse failure as docker would and returns the exit code.
pub(crate) fn report(e: clap::Error, root: &clap::Command, args: &[OsString]) -> i32 {
    let path = command_path(root, args);
    let full = if path.is_empty() {
        "berth".to_string()
    } else {
        format!("berth {path}")
    };
    let hint = format!(
        "\n\nUsage:  {full} {}\n\nRun '{full} --help' for more information",
        usage_line(&path)
    );
    let sub = path
        .split(' ')
        .filter(|p| !p.is_empty())
        .try_fold(root, |c, name| c.find_subcommand(name));
    let sub = if path.is_empty() { Some(root) } else { sub };
    let message = match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // `help CMD` names the command after `help`.
            let path = match first_word(args).as_deref() {
                Some("help") => {
                    let mut rest = args.to_vec();
                    if let Some(i) = rest.iter().position(|a| a == "help") {
                        rest.remove(i);
                    }
                    command_path(root, &rest)
                }
                _ => path,
            };
            match crate::help::render(root, &path) {
                Some(text) => print!("{text}"),
                None => {
                    let _ = e.print();
                }
            }
            return 0;
        }
        ErrorKind::DisplayVersion => {
            let _ = e.print();
            return 0;
        }
        ErrorKind::InvalidSubcommand => {
            let name = context_str(&e, ContextKind::InvalidSubcommand).unwrap_or_default();
            if first_word(args) == Some("help".into()) {
                eprintln!("unknown help topic: {name}");
                return 1;
            }
            if path.is_empty() {
                eprintln!("berth: unknown command: berth {name}\n\nRun 'berth --help' for more information");
            } else {
                eprintln!("berth: unknown command: {full} {name}\n\nUsage:  {full}\n\nRun '{full} --help' for more information");
            }
            return 1;
        }
        ErrorKind::UnknownArgument => {
            let arg = context_str(&e, ContextKind::InvalidArg).unwrap_or_default();
            if let Some(long) = arg.strip_prefix("--") {
                format!("unknown flag: --{}", long.split('=').next().unwrap_or(long))
            } else if let Some(short) = arg.strip_prefix('-') {
                let c = short.chars().next().unwrap_or('-');
                format!("unknown shorthand flag: '{c}' in -{short}")
            } else {
                eprintln!("berth: '{full}' accepts no arguments\n\nUsage:  {full} {}\n\nRun '{full} --help' for more information", usage_line(&path));
                return 1;
            }
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let shown = context_str(&e, ContextKind::InvalidArg).unwrap_or_default();
            let value = context_str(&e, ContextKind::InvalidValue).unwrap_or_default();
            let names = flag_names(sub, &shown);
            if value.is_empty() && e.kind() == ErrorKind::InvalidValue {
                format!(
                    "flag needs an argument: {}",
                    names.rsplit(", ").next().unwrap_or(&names)
                )
            } else {
                let why = std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| {
                        let valid = context_str(&e, ContextKind::ValidValue).unwrap_or_default();
                        format!("must be one of {valid}")
                    });
                format!("invalid argument {value:?} for {names:?} flag: {why}")
            }
        }
        _ => {
            let _ = e.print();
            return 125;
        }
    };
    eprintln!("{message}{hint}");
    125
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn paths() {
        let root = crate::Cli::command();
        assert_eq!(
            command_path(
                &root,
                &args(&["berth", "-H", "unix:///x", "run", "--rm", "busybox"])
            ),
            "run"
        );
        assert_eq!(
            command_path(&root, &args(&["berth", "container", "ps", "-a"])),
            "container ls"
        );
        assert_eq!(
            command_path(&root, &args(&["berth", "image", "remove", "x"])),
            "image rm"
        );
        assert_eq!(command_path(&root, &args(&["berth", "--bogus"])), "");
    }

    #[test]
    fn flag_names_from_clap_context() {
        let root = crate::Cli::command();
        let run = root.find_subcommand("run");
        assert_eq!(flag_names(run, "--attach <ATTACH>"), "-a, --attach");
        assert_eq!(flag_names(run, "--name <NAME>"), "--name");
        let history = root.find_subcommand("history");
        assert_eq!(flag_names(history, "--human[=<HUMAN>]"), "-H, --human");
    }
}

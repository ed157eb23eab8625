//! `--help` and `help CMD` in docker's layout: the usage line, the
//! description, the other spellings of the command (`Aliases:`), then the
//! options as pflag prints them (sorted, `-f, --filter filter` with the
//! value's type, descriptions wrapped to the terminal) or the subcommands,
//! grouped on the root as docker groups them.

use clap::{ArgAction, Command};

use crate::usage::usage_line;

/// Root commands shown under "Common Commands", in docker's order.
const COMMON: &[&str] = &[
    "run", "exec", "ps", "build", "pull", "push", "images", "login", "logout", "search", "version",
    "info",
];

/// Spellings of one command under another name: the short form first, the
/// canonical path second (same-named shortcuts such as `run` for
/// `container run` are found without this table).
const SAME_AS: &[(&str, &str)] = &[
    ("ps", "container ls"),
    ("images", "image ls"),
    ("rmi", "image rm"),
    ("builder build", "image build"),
];

/// Objects whose verbs have a same-named root shortcut (`docker logs` is
/// `docker container logs`). The root `inspect` is generic, not one of them.
const OBJECTS: &[&str] = &["container", "image", "system"];

/// The help text of the command at `path` (`""` for the root, `"container
/// ls"`), or `None` when no such command exists.
pub(crate) fn render(root: &Command, path: &str) -> Option<String> {
    let cmd = find(root, path)?;
    let full = match path {
        "" => "berth".to_string(),
        p => format!("berth {p}"),
    };
    let about = cmd
        .get_long_about()
        .or(cmd.get_about())
        .map(|a| a.to_string())
        .unwrap_or_default();
    let mut out = String::new();
    if path.is_empty() {
        out.push_str(&format!("Usage:  berth [OPTIONS] COMMAND\n\n{about}\n"));
        out.push_str(&root_commands(cmd));
        out.push_str(&format!("\nGlobal Options:\n{}", flags(cmd)));
        out.push_str("\nRun 'berth COMMAND --help' for more information on a command.\n");
        return Some(out);
    }
    if cmd.has_subcommands() {
        out.push_str(&format!("Usage:  {full} COMMAND\n\n{about}\n\nCommands:\n"));
        out.push_str(&command_list(visible_subcommands(cmd)));
        out.push_str(&format!(
            "\nRun '{full} COMMAND --help' for more information on a command.\n"
        ));
        return Some(out);
    }
    out.push_str(&format!(
        "Usage:  {full} {}\n\n{about}\n",
        use_line(cmd, path)
    ));
    let aliases = aliases(root, path);
    if aliases.len() > 1 {
        let names: Vec<String> = aliases.iter().map(|a| format!("berth {a}")).collect();
        out.push_str(&format!("\nAliases:\n  {}\n", names.join(", ")));
    }
    let options = flags(cmd);
    if !options.is_empty() {
        out.push_str(&format!("\nOptions:\n{options}"));
    }
    Some(out)
}

fn find<'a>(root: &'a Command, path: &str) -> Option<&'a Command> {
    path.split(' ')
        .filter(|w| !w.is_empty())
        .try_fold(root, |c, w| c.find_subcommand(w))
}

/// What follows the command path on the usage line: [`usage_line`]'s table,
/// else the command's own `override_usage` without its leading words.
fn use_line(cmd: &Command, path: &str) -> String {
    let known = usage_line(path);
    if known != "[OPTIONS]" {
        return known.to_string();
    }
    let Some(own) = cmd.get_overridden_usage().map(|u| u.to_string()) else {
        return known.to_string();
    };
    let lines: Vec<String> = own
        .lines()
        .map(|l| {
            l.trim()
                .split(' ')
                .skip_while(|w| {
                    w.chars()
                        .all(|c| c.is_ascii_lowercase() || "(|)".contains(c))
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    lines.join(&format!("\n\tberth {path} "))
}

fn visible_subcommands(cmd: &Command) -> impl Iterator<Item = &Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
}

fn command_list<'a>(cmds: impl Iterator<Item = &'a Command>) -> String {
    let mut out = String::new();
    for c in cmds {
        let about = c.get_about().map(|a| a.to_string()).unwrap_or_default();
        out.push_str(&format!("  {:<11} {about}\n", c.get_name()));
    }
    out
}

/// The root's commands in docker's three groups.
fn root_commands(root: &Command) -> String {
    let all: Vec<&Command> = visible_subcommands(root).collect();
    let common = COMMON
        .iter()
        .filter_map(|n| all.iter().find(|c| c.get_name() == *n).copied());
    let mut management: Vec<&Command> = all
        .iter()
        .filter(|c| c.has_subcommands())
        .copied()
        .collect();
    management.sort_by_key(|c| c.get_name());
    let mut rest: Vec<&Command> = all
        .iter()
        .filter(|c| !c.has_subcommands() && !COMMON.contains(&c.get_name()))
        .copied()
        .collect();
    rest.sort_by_key(|c| c.get_name());
    format!(
        "\nCommon Commands:\n{}\nManagement Commands:\n{}\nCommands:\n{}",
        command_list(common),
        command_list(management.into_iter()),
        command_list(rest.into_iter())
    )
}

/// The canonical path of a command: `ps` is `container ls`, `logs` is
/// `container logs`.
fn canonical(root: &Command, path: &str) -> String {
    if let Some((_, c)) = SAME_AS.iter().find(|(short, _)| *short == path) {
        return c.to_string();
    }
    if !path.contains(' ') {
        for obj in OBJECTS {
            let same = root
                .find_subcommand(obj)
                .and_then(|o| o.get_subcommands().find(|s| s.get_name() == path));
            if same.is_some() && path != "inspect" {
                return format!("{obj} {path}");
            }
        }
    }
    path.to_string()
}

/// Every spelling of the command at `path`, docker's order: the canonical
/// path, its aliases, then the other commands that run it.
fn aliases(root: &Command, path: &str) -> Vec<String> {
    let canon = canonical(root, path);
    let mut out = vec![canon.clone()];
    if let Some((parent, _)) = canon.rsplit_once(' ') {
        if let Some(c) = find(root, &canon) {
            out.extend(c.get_visible_aliases().map(|a| format!("{parent} {a}")));
        }
    }
    let top = visible_subcommands(root)
        .filter(|c| !c.has_subcommands())
        .map(|c| c.get_name().to_string());
    let others = SAME_AS.iter().map(|(short, _)| short.to_string());
    for other in top.chain(others) {
        if other != canon && !out.contains(&other) && canonical(root, &other) == canon {
            out.push(other);
        }
    }
    out
}

/// One option as pflag lays it out: names, value type, description.
struct Flag {
    names: String,
    usage: String,
}

/// The options of `cmd`, sorted by name, pflag's columns and wrapping.
fn flags(cmd: &Command) -> String {
    // `-h` belongs to another flag (`run -h HOSTNAME`): docker then lists
    // `--help` itself.
    let h_taken = cmd
        .get_arguments()
        .any(|a| a.get_short() == Some('h') && a.get_id() != "help");
    let mut list: Vec<(String, Flag)> = cmd
        .get_arguments()
        .filter(|a| !a.is_positional() && !a.is_hide_set())
        .filter(|a| h_taken || a.get_id() != "help")
        .map(|a| {
            let long = a.get_long().unwrap_or_default();
            let mut names = match a.get_short() {
                Some(s) if a.get_id() != "help" => format!("  -{s}, --{long}"),
                _ => format!("      --{long}"),
            };
            let ty = value_type(a);
            if let Some(t) = &ty {
                names.push(' ');
                names.push_str(t);
            }
            let mut usage = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            if a.get_id() == "help" {
                usage = "Print usage".into();
            }
            if let Some(d) = shown_default(a, ty.as_deref()) {
                usage.push_str(&format!(" (default {d})"));
            }
            let key = a
                .get_long()
                .map(str::to_string)
                .unwrap_or_else(|| a.get_short().map(String::from).unwrap_or_default());
            (key, Flag { names, usage })
        })
        .collect();
    list.sort_by(|a, b| a.0.cmp(&b.0));
    let width = list.iter().map(|(_, f)| f.names.len()).max().unwrap_or(0);
    let cols = match crate::tty::size() {
        (_, 0) => 79,
        (_, w) => usize::from(w) - 1,
    };
    let mut out = String::new();
    for (_, f) in &list {
        out.push_str(&format!(
            "{:<width$}   {}\n",
            f.names,
            wrap(width + 3, cols, &f.usage)
        ));
    }
    out
}

/// The type word pflag shows after a flag taking a value (`string`,
/// `list`, `int`…); `None` for switches, optional values included (docker's
/// booleans).
fn value_type(a: &clap::Arg) -> Option<String> {
    if !matches!(a.get_action(), ArgAction::Set | ArgAction::Append) {
        return None;
    }
    if a.get_num_args().is_some_and(|n| n.min_values() == 0) {
        return None;
    }
    let name = a
        .get_value_names()
        .and_then(|v| v.first())
        .map(|n| n.to_string());
    Some(match name {
        // Ours name the type in lower case; clap's default is the id in
        // upper case.
        Some(n) if n.chars().any(|c| c.is_ascii_lowercase()) => n,
        _ if matches!(a.get_action(), ArgAction::Append) => "list".into(),
        _ => "string".into(),
    })
}

/// pflag's `(default …)`: only for a value other than the type's zero,
/// quoted for strings.
fn shown_default(a: &clap::Arg, ty: Option<&str>) -> Option<String> {
    if a.is_hide_default_value_set() {
        return None;
    }
    let d = a
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(",");
    let ty = ty?;
    if matches!(d.as_str(), "" | "0" | "false" | "[]") {
        return None;
    }
    Some(if ty == "string" { format!("{d:?}") } else { d })
}

/// pflag's `wrap`: `s` in lines of at most `cols - indent` characters (a few
/// over rather than leave a short last word), continuation lines indented.
fn wrap(indent: usize, cols: usize, s: &str) -> String {
    let pad = " ".repeat(indent);
    let mut room = cols.saturating_sub(indent);
    let mut prefix = String::new();
    let mut indent_pad = pad.clone();
    if room < 24 {
        // Too narrow beside the names: the text goes below them.
        indent_pad = " ".repeat(16);
        room = cols.saturating_sub(16);
        prefix = format!("\n{indent_pad}");
    }
    if room < 24 {
        return s.replace('\n', &prefix);
    }
    const SLOP: usize = 5;
    let room = room - SLOP;
    let mut lines = Vec::new();
    let mut rest = s;
    loop {
        let (line, more) = wrap_once(room, SLOP, rest);
        lines.push(line.replace('\n', &format!("\n{indent_pad}")));
        match more {
            Some(m) => rest = m,
            None => break,
        }
    }
    format!("{prefix}{}", lines.join(&format!("\n{indent_pad}")))
}

/// Splits off the first line of `s`: at the last space before `room`, or
/// not at all when the whole fits within `room + slop`.
fn wrap_once(room: usize, slop: usize, s: &str) -> (&str, Option<&str>) {
    if room + slop > s.len() {
        return (s, None);
    }
    let head = match s.get(..room) {
        Some(h) => h,
        None => return (s, None),
    };
    let Some(at) = head.rfind([' ', '\t', '\n']).filter(|&i| i > 0) else {
        return (s, None);
    };
    if let Some(nl) = head.rfind('\n').filter(|&n| n > 0 && n < at) {
        return (&s[..nl], Some(&s[nl + 1..]));
    }
    (&s[..at], Some(&s[at + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn root() -> Command {
        crate::Cli::command()
    }

    #[test]
    fn wraps_like_pflag() {
        let s = "Show n last created containers (includes all states) (default -1)";
        assert_eq!(
            wrap(24, 79, s),
            "Show n last created containers (includes all\n                        states) (default -1)"
        );
        assert_eq!(wrap(24, 79, "Short"), "Short");
    }

    #[test]
    fn aliases_in_docker_s_order() {
        let r = root();
        assert_eq!(
            aliases(&r, "ps"),
            ["container ls", "container list", "container ps", "ps"]
        );
        assert_eq!(aliases(&r, "container ls"), aliases(&r, "ps"));
        assert_eq!(aliases(&r, "rmi"), ["image rm", "image remove", "rmi"]);
        assert_eq!(
            aliases(&r, "build"),
            ["image build", "build", "builder build"]
        );
        assert_eq!(aliases(&r, "info"), ["system info", "info"]);
        assert_eq!(aliases(&r, "network ls"), ["network ls", "network list"]);
        assert_eq!(aliases(&r, "inspect"), ["inspect"]);
        assert_eq!(aliases(&r, "container inspect"), ["container inspect"]);
    }

    #[test]
    fn options_as_pflag_prints_them() {
        let text = render(&root(), "ps").unwrap();
        assert!(
            text.contains("\n  -a, --all             Show all containers"),
            "{text}"
        );
        assert!(text.contains("\n  -f, --filter filter   Filter"), "{text}");
        assert!(text.contains("\n  -s, --size            Display"), "{text}");
        assert!(!text.contains("--help"), "{text}");
        let run = render(&root(), "run").unwrap();
        assert!(run.contains("\n      --help "), "{run}");
        assert!(run.contains("\n  -h, --hostname string "), "{run}");
        assert!(!run.contains("string <"), "{run}");
    }
}

//! berth's command-line client: Docker's commands, flags, output and exit
//! codes, spoken to the daemon over the Docker Engine API on a Unix socket
//! (so `alias docker=berth` works).
//!
//! The binary calls [`main`] with its arguments (program name first) after
//! dispatching `berth daemon` and `berth shim` itself. [`main`] parses the
//! flags, pings the daemon (starting one when none answers on the default
//! socket), runs the command on a current-thread tokio runtime and returns
//! the exit code; errors are printed the way docker prints them.
//!
//! Layout: `client` (HTTP over the socket, version negotiation, errors,
//! hijack), `autostart`, `attach` (streams of an attached container),
//! `tty` (raw mode, window size), `format` (tables, units, templates),
//! `usage` (docker's usage-error texts), `commands` (one module per command
//! group).

mod attach;
mod autostart;
mod client;
mod commands;
mod format;
mod help;
mod tty;
mod usage;

use std::ffi::OsString;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use client::{Client, ClientError, Host, DEFAULT_HOST};
use commands::attach::AttachArgs;
use commands::build::BuildArgs;
use commands::commit::{CommitArgs, DiffArgs};
use commands::cp::CpArgs;
use commands::create::CreateArgs;
use commands::events::EventsArgs;
use commands::exec::ExecArgs;
use commands::export::ExportArgs;
use commands::image_io::{ImportArgs, LoadArgs, PullArgs, SaveArgs};
use commands::images::{HistoryArgs, ImagesArgs, RmiArgs, TagArgs};
use commands::inspect::{InspectArgs, TypedInspectArgs};
use commands::lifecycle::{KillArgs, PauseArgs, RenameArgs, RmArgs, StopArgs, WaitArgs};
use commands::logs::LogsArgs;
use commands::port::PortArgs;
use commands::ps::PsArgs;
use commands::run::RunArgs;
use commands::start::StartArgs;
use commands::stats::StatsArgs;
use commands::system::{InfoArgs, VersionArgs};
use commands::top::TopArgs;
use commands::update::UpdateArgs;
use commands::{CmdResult, Ctx, StatusError};

/// `berth [OPTIONS] COMMAND`.
#[derive(Debug, Parser)]
#[command(
    name = "berth",
    about = "A self-sufficient runtime for containers",
    disable_version_flag = true,
    subcommand_value_name = "COMMAND",
    override_usage = "berth [OPTIONS] COMMAND"
)]
struct Cli {
    /// Daemon socket to connect to (default: $BERTH_HOST, else unix:///run/berth/berth.sock)
    #[arg(short = 'H', long = "host", value_name = "list")]
    host: Option<String>,
    /// Enable debug mode
    #[arg(short = 'D', long)]
    debug: bool,
    /// Set the logging level ("debug", "info", "warn", "error", "fatal")
    #[arg(
        short = 'l',
        long = "log-level",
        value_name = "string",
        default_value = "info"
    )]
    log_level: String,
    /// Print version information and quit
    #[arg(short = 'v', long = "version")]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create and run a new container from an image
    Run(RunArgs),
    /// List containers
    Ps(PsArgs),
    /// List images
    Images(ImagesArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(commands::registry::PushArgs),
    /// Authenticate to a registry
    Login(commands::registry::LoginArgs),
    /// Log out from a registry
    Logout(commands::registry::LogoutArgs),
    /// Show the berth version information
    Version(VersionArgs),
    /// Display system-wide information
    Info(InfoArgs),
    /// Manage containers
    Container {
        #[command(subcommand)]
        cmd: ContainerCmd,
    },
    /// Manage images
    Image {
        #[command(subcommand)]
        cmd: ImageCmd,
    },
    /// Manage networks
    Network {
        #[command(subcommand)]
        cmd: commands::network::NetworkCmd,
    },
    /// Manage builds
    Builder {
        #[command(subcommand)]
        cmd: BuilderCmd,
    },
    /// Manage volumes
    Volume {
        #[command(subcommand)]
        cmd: commands::volume::VolumeCmd,
    },
    /// Generate the autocompletion script for the specified shell
    Completion {
        #[command(subcommand)]
        cmd: commands::completion::CompletionCmd,
    },
    /// Manage berth
    System {
        #[command(subcommand)]
        cmd: SystemCmd,
    },
    /// Run the berth daemon
    #[command(disable_help_flag = true)]
    Daemon {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Create a new container
    Create(CreateArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(DiffArgs),
    /// Get real time events from the server
    Events(EventsArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Return low-level information on Docker objects
    Inspect(InspectArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Pause all processes within one or more containers
    Pause(PauseArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Unpause all processes within one or more containers
    Unpause(PauseArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(WaitArgs),
}

#[derive(Debug, Subcommand)]
enum ContainerCmd {
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Create a new container
    Create(CreateArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(DiffArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Display detailed information on one or more containers
    Inspect(TypedInspectArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// List containers
    #[command(visible_aliases = ["list", "ps"])]
    Ls(PsArgs),
    /// Pause all processes within one or more containers
    Pause(PauseArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Remove all stopped containers
    Prune(commands::prune::PruneArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Remove one or more containers
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Unpause all processes within one or more containers
    Unpause(PauseArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(WaitArgs),
}

#[derive(Debug, Subcommand)]
enum BuilderCmd {
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Remove build cache
    Prune(commands::prune::PruneArgs),
}

#[derive(Debug, Subcommand)]
enum SystemCmd {
    /// Show berth disk usage
    Df(commands::prune::DfArgs),
    /// Remove unused data
    Prune(commands::prune::PruneArgs),
    /// Get real time events from the server
    Events(EventsArgs),
    /// Display system-wide information
    Info(InfoArgs),
}

#[derive(Debug, Subcommand)]
enum ImageCmd {
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Display detailed information on one or more images
    Inspect(TypedInspectArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Remove unused images
    Prune(commands::prune::PruneArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(commands::registry::PushArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
}

/// Runs the client with `args` (the program name first) and returns the
/// process exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    let root = Cli::command();
    let cli = match root
        .clone()
        .try_get_matches_from(&args)
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => return usage::report(e, &root, &args),
    };
    if !matches!(
        cli.log_level.to_lowercase().as_str(),
        "debug" | "info" | "warn" | "warning" | "error" | "fatal" | "panic" | "trace"
    ) {
        eprintln!("Unable to parse logging level: {}", cli.log_level);
        return 1;
    }
    if cli.version {
        return report(
            commands::outln(&commands::system::short_version())
                .map(|()| 0)
                .map_err(Into::into),
        );
    }
    let Some(command) = cli.command else {
        let _ = root.clone().print_help();
        return 0;
    };
    // Completion scripts come from the parser's definition: no daemon needed.
    if let Command::Completion { cmd } = &command {
        return report(commands::completion::completion(cmd, Cli::command()));
    }
    if let Command::Daemon { .. } = command {
        eprintln!("berth: 'berth daemon' is handled by the berth binary itself");
        return 1;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let code = runtime.block_on(run(cli.host, cli.debug, command));
    // Do not wait for blocking reads of stdin that will never finish.
    runtime.shutdown_background();
    code
}

/// The daemon address: `-H`, else `$BERTH_HOST`, else the default; and
/// whether the user chose it (which turns autostart off).
fn resolve_host(flag: Option<String>) -> (String, bool) {
    if let Some(h) = flag.filter(|h| !h.is_empty()) {
        return (h, true);
    }
    match std::env::var("BERTH_HOST") {
        Ok(h) if !h.is_empty() => (h, true),
        _ => (DEFAULT_HOST.to_string(), false),
    }
}

/// Pings and negotiates; starts a daemon when that applies.
async fn connect(client: &mut Client, host_chosen: bool) -> Result<(), anyhow::Error> {
    match client.negotiate().await {
        Ok(_) => Ok(()),
        Err(e) if autostart::applies(&e, host_chosen) => autostart::start(client)
            .await
            .map_err(|err| StatusError::new(1, err.to_string()).into()),
        Err(e) => Err(e.into()),
    }
}

async fn run(host_flag: Option<String>, debug: bool, command: Command) -> i32 {
    let (host, chosen) = resolve_host(host_flag);
    let host = match Host::parse(&host) {
        Ok(h) => h,
        Err(e) => return report(Err(e.into())),
    };
    let mut client = Client::new(host, debug);
    let connected = connect(&mut client, chosen).await;
    if let Command::Version(args) = &command {
        let (c, err) = match connected {
            Ok(()) => (Some(&client), None),
            Err(e) => match e.downcast::<ClientError>() {
                Ok(ce) => (None, Some(ce)),
                Err(other) => return report(Err(other)),
            },
        };
        return report(commands::system::version(c, err, args).await);
    }
    if let Err(e) = connected {
        return report(Err(e));
    }
    let ctx = Ctx {
        client: Arc::new(client),
        debug,
    };
    report(dispatch(&ctx, command).await)
}

async fn dispatch(ctx: &Ctx, command: Command) -> CmdResult {
    use commands::{
        attach, create, events, exec, image_io, images, inspect, lifecycle, logs, port, ps, run,
        start, stats, system, top, update,
    };
    match command {
        Command::Exec(a) => exec::exec(ctx, &a, "exec").await,
        Command::Container {
            cmd: ContainerCmd::Exec(a),
        } => exec::exec(ctx, &a, "container exec").await,
        Command::Attach(a) => attach::attach(ctx, &a, "attach").await,
        Command::Container {
            cmd: ContainerCmd::Attach(a),
        } => attach::attach(ctx, &a, "container attach").await,
        Command::Top(a) => top::top(ctx, &a, "top").await,
        Command::Container {
            cmd: ContainerCmd::Top(a),
        } => top::top(ctx, &a, "container top").await,
        Command::Stats(a)
        | Command::Container {
            cmd: ContainerCmd::Stats(a),
        } => stats::stats(ctx, &a).await,
        Command::Update(a) => update::update(ctx, &a, "update").await,
        Command::Container {
            cmd: ContainerCmd::Update(a),
        } => update::update(ctx, &a, "container update").await,
        Command::Pause(a) => lifecycle::pause(ctx, &a, "pause", "pause").await,
        Command::Container {
            cmd: ContainerCmd::Pause(a),
        } => lifecycle::pause(ctx, &a, "pause", "container pause").await,
        Command::Unpause(a) => lifecycle::pause(ctx, &a, "unpause", "unpause").await,
        Command::Container {
            cmd: ContainerCmd::Unpause(a),
        } => lifecycle::pause(ctx, &a, "unpause", "container unpause").await,
        Command::Port(a) => port::port(ctx, &a, "port").await,
        Command::Container {
            cmd: ContainerCmd::Port(a),
        } => port::port(ctx, &a, "container port").await,
        Command::Events(a)
        | Command::System {
            cmd: SystemCmd::Events(a),
        } => events::events(ctx, &a).await,
        Command::System {
            cmd: SystemCmd::Info(a),
        } => system::info(ctx, &a).await,
        Command::System {
            cmd: SystemCmd::Df(a),
        } => commands::prune::df(ctx, &a).await,
        Command::System {
            cmd: SystemCmd::Prune(a),
        } => commands::prune::system_prune(ctx, &a).await,
        Command::Container {
            cmd: ContainerCmd::Prune(a),
        } => commands::prune::container_prune(ctx, &a).await,
        Command::Image {
            cmd: ImageCmd::Prune(a),
        } => commands::prune::image_prune(ctx, &a).await,
        Command::Builder {
            cmd: BuilderCmd::Prune(a),
        } => commands::prune::builder_prune(ctx, &a).await,
        Command::Run(a)
        | Command::Container {
            cmd: ContainerCmd::Run(a),
        } => run::run(ctx, &a).await,
        Command::Create(a)
        | Command::Container {
            cmd: ContainerCmd::Create(a),
        } => create::create(ctx, &a).await,
        Command::Ps(a)
        | Command::Container {
            cmd: ContainerCmd::Ls(a),
        } => ps::ps(ctx, &a).await,
        Command::Start(a) => start::start(ctx, &a, "start").await,
        Command::Container {
            cmd: ContainerCmd::Start(a),
        } => start::start(ctx, &a, "container start").await,
        Command::Wait(a) => lifecycle::wait(ctx, &a, "wait").await,
        Command::Container {
            cmd: ContainerCmd::Wait(a),
        } => lifecycle::wait(ctx, &a, "container wait").await,
        Command::Rm(a) => lifecycle::rm(ctx, &a, "rm").await,
        Command::Container {
            cmd: ContainerCmd::Rm(a),
        } => lifecycle::rm(ctx, &a, "container rm").await,
        Command::Rename(a) => lifecycle::rename(ctx, &a, "rename").await,
        Command::Container {
            cmd: ContainerCmd::Rename(a),
        } => lifecycle::rename(ctx, &a, "container rename").await,
        Command::Stop(a) => lifecycle::stop(ctx, &a, "stop").await,
        Command::Container {
            cmd: ContainerCmd::Stop(a),
        } => lifecycle::stop(ctx, &a, "container stop").await,
        Command::Restart(a) => lifecycle::restart(ctx, &a, "restart").await,
        Command::Container {
            cmd: ContainerCmd::Restart(a),
        } => lifecycle::restart(ctx, &a, "container restart").await,
        Command::Kill(a) => lifecycle::kill(ctx, &a, "kill").await,
        Command::Container {
            cmd: ContainerCmd::Kill(a),
        } => lifecycle::kill(ctx, &a, "container kill").await,
        Command::Logs(a) => logs::logs(ctx, &a, "logs").await,
        Command::Container {
            cmd: ContainerCmd::Logs(a),
        } => logs::logs(ctx, &a, "container logs").await,
        Command::Container {
            cmd: ContainerCmd::Inspect(a),
        } => inspect::inspect_typed(ctx, &a, false).await,
        Command::Inspect(a) => inspect::inspect(ctx, &a).await,
        Command::Images(a) => images::images(ctx, &a, true).await,
        Command::Image {
            cmd: ImageCmd::Ls(a),
        } => images::images(ctx, &a, false).await,
        Command::Image {
            cmd: ImageCmd::Inspect(a),
        } => inspect::inspect_typed(ctx, &a, true).await,
        Command::Tag(a)
        | Command::Image {
            cmd: ImageCmd::Tag(a),
        } => images::tag(ctx, &a).await,
        Command::Rmi(a) => images::rmi(ctx, &a, "rmi").await,
        Command::Image {
            cmd: ImageCmd::Rm(a),
        } => images::rmi(ctx, &a, "image rm").await,
        Command::History(a) => images::history(ctx, &a, "history").await,
        Command::Image {
            cmd: ImageCmd::History(a),
        } => images::history(ctx, &a, "image history").await,
        Command::Import(a)
        | Command::Image {
            cmd: ImageCmd::Import(a),
        } => image_io::import(ctx, &a).await,
        Command::Load(a)
        | Command::Image {
            cmd: ImageCmd::Load(a),
        } => image_io::load(ctx, &a).await,
        Command::Build(a)
        | Command::Image {
            cmd: ImageCmd::Build(a),
        }
        | Command::Builder {
            cmd: BuilderCmd::Build(a),
        } => commands::build::build(ctx, &a).await,
        Command::Save(a)
        | Command::Image {
            cmd: ImageCmd::Save(a),
        } => image_io::save(ctx, &a).await,
        Command::Pull(a)
        | Command::Image {
            cmd: ImageCmd::Pull(a),
        } => image_io::pull(ctx, &a).await,
        Command::Push(a)
        | Command::Image {
            cmd: ImageCmd::Push(a),
        } => commands::registry::push(ctx, &a).await,
        Command::Login(a) => commands::registry::login(ctx, &a).await,
        Command::Logout(a) => commands::registry::logout(ctx, &a).await,
        Command::Info(a) => system::info(ctx, &a).await,
        Command::Network { cmd } => commands::network::network(ctx, &cmd).await,
        Command::Volume { cmd } => commands::volume::volume(ctx, &cmd).await,
        Command::Cp(a)
        | Command::Container {
            cmd: ContainerCmd::Cp(a),
        } => commands::cp::cp(ctx, &a).await,
        Command::Commit(a) => commands::commit::commit(ctx, &a, "commit").await,
        Command::Container {
            cmd: ContainerCmd::Commit(a),
        } => commands::commit::commit(ctx, &a, "container commit").await,
        Command::Diff(a) => commands::commit::diff(ctx, &a, "diff").await,
        Command::Export(a) => commands::export::export(ctx, &a, "export").await,
        Command::Container {
            cmd: ContainerCmd::Export(a),
        } => commands::export::export(ctx, &a, "container export").await,
        Command::Container {
            cmd: ContainerCmd::Diff(a),
        } => commands::commit::diff(ctx, &a, "container diff").await,
        Command::Version(_) | Command::Daemon { .. } | Command::Completion { .. } => Ok(0),
    }
}

/// Turns a command's result into the exit code, printing the error as
/// docker does: the message alone on stderr; a closed output pipe exits
/// 141 quietly (docker dies of SIGPIPE there).
fn report(result: CmdResult) -> i32 {
    let e = match result {
        Ok(code) => return code,
        Err(e) => e,
    };
    let broken_pipe = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return 141;
    }
    if let Some(s) = e.downcast_ref::<StatusError>() {
        if !s.message.is_empty() {
            eprintln!("{}", s.message);
        }
        return s.code;
    }
    eprintln!("{e}");
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_keeps_command_flags_for_the_container() {
        let cli = Cli::try_parse_from([
            "berth",
            "-H",
            "unix:///tmp/x.sock",
            "run",
            "--rm",
            "busybox",
            "ls",
            "-la",
        ])
        .unwrap();
        assert_eq!(cli.host.as_deref(), Some("unix:///tmp/x.sock"));
        let Some(Command::Run(r)) = cli.command else {
            panic!()
        };
        assert!(r.opts.rm);
        assert_eq!(r.args, vec!["busybox", "ls", "-la"]);
        let cli = Cli::try_parse_from([
            "berth",
            "container",
            "run",
            "-d",
            "--sig-proxy=false",
            "busybox",
        ])
        .unwrap();
        let Some(Command::Container {
            cmd: ContainerCmd::Run(r),
        }) = cli.command
        else {
            panic!()
        };
        assert!(r.detach && !r.sig_proxy);
    }

    #[test]
    fn aliases_and_exit_codes() {
        assert!(matches!(
            Cli::try_parse_from(["berth", "container", "ps", "-a"])
                .unwrap()
                .command,
            Some(Command::Container {
                cmd: ContainerCmd::Ls(_)
            })
        ));
        assert!(matches!(
            Cli::try_parse_from(["berth", "image", "list"])
                .unwrap()
                .command,
            Some(Command::Image {
                cmd: ImageCmd::Ls(_)
            })
        ));
        assert!(matches!(
            Cli::try_parse_from(["berth", "daemon", "--data-root", "/x"])
                .unwrap()
                .command,
            Some(Command::Daemon { .. })
        ));
        let e = Cli::try_parse_from(["berth", "ps", "--bogus"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
        let cli = Cli::try_parse_from(["berth", "history", "-H=false", "busybox"]).unwrap();
        let Some(Command::History(h)) = cli.command else {
            panic!()
        };
        assert!(!h.human);
        let cli = Cli::try_parse_from(["berth", "history", "busybox"]).unwrap();
        let Some(Command::History(h)) = cli.command else {
            panic!()
        };
        assert!(h.human);
    }

    #[test]
    fn container_verbs_and_their_container_spellings() {
        let parse = |a: &[&str]| {
            Cli::try_parse_from(std::iter::once("berth").chain(a.iter().copied()))
                .unwrap()
                .command
                .unwrap()
        };
        let Command::Exec(e) = parse(&["exec", "-it", "-e", "A=1", "web", "ls", "-la"]) else {
            panic!()
        };
        assert!(e.interactive && e.tty);
        assert_eq!(e.args, vec!["web", "ls", "-la"]);
        let Command::Top(t) = parse(&["top", "web", "-ef"]) else {
            panic!()
        };
        assert_eq!(t.args, vec!["web", "-ef"]);
        assert!(matches!(
            parse(&["container", "exec", "web", "true"]),
            Command::Container {
                cmd: ContainerCmd::Exec(_)
            }
        ));
        assert!(matches!(
            parse(&["container", "attach", "--sig-proxy=false", "web"]),
            Command::Container {
                cmd: ContainerCmd::Attach(_)
            }
        ));
        assert!(matches!(
            parse(&["container", "stats", "--no-stream", "-a"]),
            Command::Container {
                cmd: ContainerCmd::Stats(_)
            }
        ));
        assert!(matches!(
            parse(&["container", "update", "-m", "1g", "web"]),
            Command::Container {
                cmd: ContainerCmd::Update(_)
            }
        ));
        assert!(matches!(
            parse(&["container", "unpause", "web"]),
            Command::Container {
                cmd: ContainerCmd::Unpause(_)
            }
        ));
        assert!(matches!(
            parse(&["container", "port", "web", "80/tcp"]),
            Command::Container {
                cmd: ContainerCmd::Port(_)
            }
        ));
        assert!(matches!(
            parse(&["system", "events", "--since", "1m", "-f", "type=container"]),
            Command::System {
                cmd: SystemCmd::Events(_)
            }
        ));
        assert!(matches!(parse(&["pause", "a", "b"]), Command::Pause(_)));
        let e = Cli::try_parse_from(["berth", "events", "extra"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
    }

    #[test]
    fn errors_print_and_map_to_codes() {
        assert_eq!(report(Ok(3)), 3);
        assert_eq!(report(Err(StatusError::silent(42).into())), 42);
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert_eq!(report(Err(pipe.into())), 141);
        let e = ClientError::Daemon {
            status: 404,
            message: "No such container: x".into(),
        };
        assert_eq!(
            e.to_string(),
            "Error response from daemon: No such container: x"
        );
        assert_eq!(report(Err(e.into())), 1);
    }
}

//! `completion bash|fish|powershell|zsh`: shell completion scripts
//! generated from the same clap definition the parser uses (docker 28
//! generates its scripts from its cobra tree the same way). It needs no
//! daemon.

use clap::Subcommand;
use clap_complete::Shell;

use super::CmdResult;

/// `berth completion COMMAND`.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum CompletionCmd {
    /// Generate the autocompletion script for bash
    #[command(
        long_about = "Generate the autocompletion script for the bash shell.\n\n\
This script depends on the 'bash-completion' package.\n\
If it is not installed already, you can install it via your OS's package manager.\n\n\
To load completions in your current shell session:\n\n\
\tsource <(berth completion bash)\n\n\
To load completions for every new session, execute once:\n\n\
\tberth completion bash > /etc/bash_completion.d/berth\n\n\
You will need to start a new shell for this setup to take effect."
    )]
    Bash(CompletionOpts),
    /// Generate the autocompletion script for fish
    #[command(
        long_about = "Generate the autocompletion script for the fish shell.\n\n\
To load completions in your current shell session:\n\n\
\tberth completion fish | source\n\n\
To load completions for every new session, execute once:\n\n\
\tberth completion fish > ~/.config/fish/completions/berth.fish\n\n\
You will need to start a new shell for this setup to take effect."
    )]
    Fish(CompletionOpts),
    /// Generate the autocompletion script for powershell
    #[command(long_about = "Generate the autocompletion script for powershell.\n\n\
To load completions in your current shell session:\n\n\
\tberth completion powershell | Out-String | Invoke-Expression")]
    Powershell(CompletionOpts),
    /// Generate the autocompletion script for zsh
    #[command(
        long_about = "Generate the autocompletion script for the zsh shell.\n\n\
If shell completion is not already enabled in your environment you will need\n\
to enable it.  You can execute the following once:\n\n\
\techo \"autoload -U compinit; compinit\" >> ~/.zshrc\n\n\
To load completions for every new session, execute once:\n\n\
\tberth completion zsh > \"${fpath[1]}/_berth\"\n\n\
You will need to start a new shell for this setup to take effect."
    )]
    Zsh(CompletionOpts),
}

/// Options every shell takes.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct CompletionOpts {
    /// disable completion descriptions
    #[arg(long = "no-descriptions")]
    no_descriptions: bool,
}

impl CompletionCmd {
    fn shell(&self) -> (Shell, &CompletionOpts) {
        match self {
            CompletionCmd::Bash(o) => (Shell::Bash, o),
            CompletionCmd::Fish(o) => (Shell::Fish, o),
            CompletionCmd::Powershell(o) => (Shell::PowerShell, o),
            CompletionCmd::Zsh(o) => (Shell::Zsh, o),
        }
    }
}

/// `cmd` and everything under it without descriptions.
fn without_descriptions(cmd: clap::Command) -> clap::Command {
    cmd.about(None)
        .long_about(None)
        .mut_args(|a| a.help(None).long_help(None))
        .mut_subcommands(without_descriptions)
}

/// The script for `cmd`'s shell, completing `root` (the whole CLI).
pub(crate) fn script(cmd: &CompletionCmd, root: clap::Command) -> Vec<u8> {
    let (shell, opts) = cmd.shell();
    let mut root = if opts.no_descriptions {
        without_descriptions(root)
    } else {
        root
    };
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut root, "berth", &mut buf);
    buf
}

/// `berth completion SHELL`: prints the script.
pub(crate) fn completion(cmd: &CompletionCmd, root: clap::Command) -> CmdResult {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&script(cmd, root))?;
    stdout.flush()?;
    Ok(0)
}

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
    Bash,
    /// Generate the autocompletion script for fish
    #[command(
        long_about = "Generate the autocompletion script for the fish shell.\n\n\
To load completions in your current shell session:\n\n\
\tberth completion fish | source\n\n\
To load completions for every new session, execute once:\n\n\
\tberth completion fish > ~/.config/fish/completions/berth.fish\n\n\
You will need to start a new shell for this setup to take effect."
    )]
    Fish,
    /// Generate the autocompletion script for powershell
    #[command(long_about = "Generate the autocompletion script for powershell.\n\n\
To load completions in your current shell session:\n\n\
\tberth completion powershell | Out-String | Invoke-Expression")]
    Powershell,
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
    Zsh,
}

impl CompletionCmd {
    fn shell(&self) -> Shell {
        match self {
            CompletionCmd::Bash => Shell::Bash,
            CompletionCmd::Fish => Shell::Fish,
            CompletionCmd::Powershell => Shell::PowerShell,
            CompletionCmd::Zsh => Shell::Zsh,
        }
    }
}

/// The script for `cmd`'s shell, completing `root` (the whole CLI).
pub(crate) fn script(cmd: &CompletionCmd, mut root: clap::Command) -> Vec<u8> {
    let mut buf = Vec::new();
    clap_complete::generate(cmd.shell(), &mut root, "berth", &mut buf);
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

//! The command line, as clap sees it. Also used to generate man pages and
//! shell completions at packaging time.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "tapctl",
    version,
    about = "Issue and manage Temporary Access Passes for pam_tap",
    long_about = "Issue and manage Temporary Access Passes (TAPs) for the pam_tap PAM module.\n\n\
        Administrators (root, or members of the policy's [admins] groups) issue, show, list and revoke passes \
        and read the audit trail. Any user may show their own pass.",
    after_help = "Exit status: 0 ok, 1 internal error, 2 bad usage or input, 3 not permitted, \
        4 not found, 5 policy invalid or unsafe, 6 store or tapd unavailable."
)]
pub struct Cli {
    /// Policy file for `policy check` (default /etc/security/pam_tap.toml).
    /// Other commands use the policy tapd reads.
    #[arg(long, global = true, value_name = "PATH")]
    pub policy: Option<PathBuf>,

    /// tapd's socket.
    #[arg(long, global = true, value_name = "PATH", default_value = crate::client::DEFAULT_SOCKET)]
    pub socket: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check that tapd has the store open, and say where it is (root only).
    Init,
    /// Issue a pass to USER, replacing any pass they had. The pass is shown once.
    Issue(IssueArgs),
    /// Show USER's pass: whether it is usable and, if not, why.
    Show {
        user: String,
        #[command(flatten)]
        format: Format,
    },
    /// List every pass in the store.
    List {
        #[command(flatten)]
        format: Format,
    },
    /// Revoke USER's pass at once.
    Revoke { user: String },
    /// Register a security key for yourself: within the enrollment window a
    /// pass sign-in opened, or after touching a key you already have.
    Enroll {
        /// Yourself (the default). Keys are enrolled by their holder only.
        user: Option<String>,
        /// A name for the key, e.g. "blue YubiKey" (default "key N").
        #[arg(long)]
        label: Option<String>,
    },
    /// List security keys (yours, or USER's); `keys remove [USER] ID` removes one.
    Keys(KeysArgs),
    /// Your own pass, enrollment window and keys.
    Status {
        #[command(flatten)]
        format: Format,
    },
    /// Read the audit trail, oldest first.
    Audit {
        /// Only records about this user.
        #[arg(long)]
        user: Option<String>,
        /// Show at most this many of the newest records.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        limit: u32,
        #[command(flatten)]
        format: Format,
    },
    /// Policy file tools.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Debug, Args)]
pub struct IssueArgs {
    pub user: String,
    /// How long the pass lives, e.g. 90s, 10m, 1h30m (default: the policy's default_lifetime).
    #[arg(long, value_name = "DURATION")]
    pub lifetime: Option<String>,
    /// When the pass starts: RFC 3339 (2026-11-28T16:00:00Z) or +DURATION from now (default: now).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub start: Option<String>,
    /// Make the pass usable for one sign-in only.
    #[arg(long)]
    pub one_time: bool,
    #[command(flatten)]
    pub format: Format,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub action: Option<KeysAction>,
    /// Whose keys (administrators; default yourself).
    pub user: Option<String>,
    #[command(flatten)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Remove a key: administrators for anyone; yourself inside an
    /// enrollment window or after touching another of your keys.
    Remove {
        /// USER then ID, or just ID (yourself). ID is the key's id or its
        /// first 6+ characters (see `tapctl keys`); ids are base64url and
        /// may start with '-'.
        #[arg(value_name = "USER_OR_ID", allow_hyphen_values = true)]
        first: String,
        #[arg(value_name = "ID", allow_hyphen_values = true)]
        second: Option<String>,
    },
}

#[derive(Debug, Args, Clone, Copy)]
pub struct Format {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file (default: the one in use) and print the effective policy.
    Check { file: Option<PathBuf> },
}

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
    /// Policy file for `policy check` and `store migrate` (default
    /// /etc/security/pam_tap.toml). Other commands use the policy tapd reads.
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
    /// List OpenSSH keys (yours, or USER's); `add`, `remove` and `challenge`
    /// manage them.
    SshKeys(SshKeysArgs),
    /// On your laptop: make an OpenSSH security key and enroll it on HOST
    /// over one SSH connection (you type your pass once, then touch the key).
    SshEnroll(SshEnrollArgs),
    /// For sshd's AuthorizedKeysCommand: print USER's enrolled SSH keys.
    /// Prints nothing for a user without keys, out of the policy's scope,
    /// or unknown, and when tapd does not answer within a second.
    AuthorizedKeys { user: String },
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
        /// Only records written by this host (its name as `uname -n` gives
        /// it; a fleet's PostgreSQL store keeps every host's records).
        #[arg(long, value_name = "HOST")]
        host: Option<String>,
        /// Show at most this many of the newest records.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        limit: u32,
        #[command(flatten)]
        format: Format,
    },
    /// Policy file tools.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// The store itself (root): `store migrate --to URL` copies this host's
    /// SQLite store into a fleet's PostgreSQL database.
    #[command(subcommand)]
    Store(StoreCommand),
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

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SshKeysArgs {
    #[command(subcommand)]
    pub action: Option<SshKeysAction>,
    /// Whose keys (administrators; default yourself).
    pub user: Option<String>,
    #[command(flatten)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum SshKeysAction {
    /// Add an OpenSSH public key: yourself inside the enrollment window a
    /// pass sign-in opened; administrators for anyone (--user).
    Add {
        /// The public-key file (`id_ed25519_sk.pub`), or - for stdin.
        #[arg(value_name = "FILE|-", default_value = "-")]
        file: String,
        /// A name for the key (default: the key's comment).
        #[arg(long)]
        label: Option<String>,
        /// OpenSSH's attestation (`ssh-keygen -O write-attestation=FILE`),
        /// made with a challenge from `tapctl ssh-keys challenge`; - for stdin.
        #[arg(long, value_name = "FILE|-")]
        attestation: Option<String>,
        /// The attestation inline, in base64 (how `ssh-enroll` sends it).
        #[arg(long, value_name = "BASE64", conflicts_with = "attestation")]
        attestation_base64: Option<String>,
        /// Add the key for this user (administrators).
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        format: Format,
    },
    /// Remove an SSH key: administrators for anyone; yourself inside an
    /// enrollment window or after touching one of your security keys.
    Remove {
        /// USER then ID, or just ID (yourself). ID is the key's SHA256
        /// fingerprint or its first 6+ characters (see `tapctl ssh-keys`).
        #[arg(value_name = "USER_OR_ID", allow_hyphen_values = true)]
        first: String,
        #[arg(value_name = "ID", allow_hyphen_values = true)]
        second: Option<String>,
    },
    /// Print a challenge for `ssh-keygen -O challenge=FILE`, to attest a
    /// new key with (inside your enrollment window).
    Challenge {
        #[command(flatten)]
        format: Format,
    },
}

#[derive(Debug, Args)]
pub struct SshEnrollArgs {
    /// The server, as you give it to ssh.
    #[arg(value_name = "[USER@]HOST")]
    pub target: String,
    /// The kind of security key to make.
    #[arg(long = "type", value_enum, default_value = "ed25519-sk")]
    pub key_type: SshKeyKind,
    /// A name for the key on the server (default: "ed25519-sk from THIS-HOST").
    #[arg(long)]
    pub label: Option<String>,
    /// Where to write the new key (default ~/.ssh/id_TYPE_HOST).
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
    /// Write the key file without a passphrase (the file alone cannot sign:
    /// the security key must be touched).
    #[arg(long)]
    pub no_passphrase: bool,
    /// An option for ssh, as `ssh -o` takes it (repeatable).
    #[arg(short = 'o', value_name = "OPTION")]
    pub ssh_options: Vec<String>,
    /// tapctl on the server, when it is not on the PATH of a session there.
    #[arg(long, value_name = "PATH", default_value = "tapctl")]
    pub remote_tapctl: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SshKeyKind {
    #[value(name = "ed25519-sk")]
    Ed25519Sk,
    #[value(name = "ecdsa-sk")]
    EcdsaSk,
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
    Check {
        file: Option<PathBuf>,
        #[command(flatten)]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy this host's SQLite store (passes with their state, security keys
    /// with their counters, SSH keys, the audit trail) into a PostgreSQL
    /// database, as its admin role, in one transaction; the SQLite store is
    /// only read. Root only: tapd does the copy, run as the store's owner.
    Migrate(StoreMigrateArgs),
}

#[derive(Debug, Args)]
pub struct StoreMigrateArgs {
    /// The database, as its admin role:
    /// postgresql://pam_tap_admin@HOST[:PORT]/DB[?PARAMS].
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// The admin role's password, as the file's first line; root's alone
    /// (mode 0600).
    #[arg(long, value_name = "PATH")]
    pub password_file: Option<PathBuf>,
    /// The CA that signed the database server's certificate.
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// Copy into a database that holds passes or keys already (another
    /// host's); still refused, whole, if any user here has a pass, or any
    /// key here is enrolled, there already: nothing is ever replaced.
    #[arg(long)]
    pub merge: bool,
}

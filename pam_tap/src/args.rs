//! Module arguments from the PAM stack line, parsed once into a typed struct.

use std::path::PathBuf;
use tap_core::signin::{FirstPass, Mode};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleArgs {
    /// The policy is tapd's; the module reads it only for the key helper
    /// (which program it runs as root, and for how long).
    pub policy: PathBuf,
    /// `socket=`: where tapd listens.
    pub socket: PathBuf,
    pub debug: bool,
    pub first_pass: FirstPass,
    /// `pass_only`: a service where the pass is the only way in.
    pub mode: Mode,
    /// Skip pam_fail_delay (for benchmarks; pam_unix has the same switch).
    pub nodelay: bool,
    /// Arguments we did not understand, to be logged loudly.
    pub unknown: Vec<String>,
    /// A `policy=` or `socket=` that is not an absolute path, as written:
    /// the module fails closed.
    pub bad_policy: Option<String>,
}

impl ModuleArgs {
    pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Self {
        let mut parsed = ModuleArgs {
            policy: PathBuf::from(tap_core::policy::DEFAULT_PATH),
            socket: PathBuf::from(tap_core::daemon::DEFAULT_SOCKET),
            debug: false,
            first_pass: FirstPass::Prompt,
            mode: Mode::PasswordOrPass,
            nodelay: false,
            unknown: Vec::new(),
            bad_policy: None,
        };
        for arg in args {
            match arg {
                "debug" => parsed.debug = true,
                "use_first_pass" => parsed.first_pass = FirstPass::Use,
                "try_first_pass" => parsed.first_pass = FirstPass::Try,
                "nodelay" => parsed.nodelay = true,
                "pass_only" => parsed.mode = Mode::PassOnly,
                _ => match (arg.strip_prefix("policy="), arg.strip_prefix("socket=")) {
                    (Some(path), _) if path.starts_with('/') => parsed.policy = PathBuf::from(path),
                    (_, Some(path)) if path.starts_with('/') => parsed.socket = PathBuf::from(path),
                    (Some(_), _) | (_, Some(_)) => parsed.bad_policy = Some(arg.to_string()),
                    (None, None) => parsed.unknown.push(arg.to_string()),
                },
            }
        }
        parsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_and_keeps_unknown() {
        let args = ModuleArgs::parse([
            "debug",
            "try_first_pass",
            "policy=/etc/x.toml",
            "bogus",
            "nodelay",
            "pass_only",
        ]);
        assert!(args.debug && args.nodelay);
        assert_eq!(args.mode, Mode::PassOnly);
        assert_eq!(args.first_pass, FirstPass::Try);
        assert_eq!(args.policy, PathBuf::from("/etc/x.toml"));
        assert_eq!(args.unknown, vec!["bogus"]);
        assert_eq!(args.bad_policy, None);
    }

    #[test]
    fn relative_policy_is_flagged() {
        let args = ModuleArgs::parse(["policy=etc/x.toml"]);
        assert_eq!(args.bad_policy.as_deref(), Some("policy=etc/x.toml"));
        let args = ModuleArgs::parse(["socket=run/tapd.sock"]);
        assert_eq!(args.bad_policy.as_deref(), Some("socket=run/tapd.sock"));
        let args = ModuleArgs::parse(["socket=/run/x.sock"]);
        assert_eq!(args.socket, PathBuf::from("/run/x.sock"));
        assert_eq!(
            ModuleArgs::parse([]).socket,
            PathBuf::from("/run/pam_tap/tapd.sock")
        );
        assert_eq!(
            ModuleArgs::parse([]).policy,
            PathBuf::from("/etc/security/pam_tap.toml")
        );
        assert_eq!(ModuleArgs::parse([]).mode, Mode::PasswordOrPass);
    }
}

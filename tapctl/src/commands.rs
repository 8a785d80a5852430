//! One function per subcommand: each sends its request to tapd and prints
//! the reply (`policy check` alone reads a file, here).

use crate::cli::{
    Command, Format, IssueArgs, KeysAction, PolicyCommand, SshKeysAction, StoreCommand,
};
use crate::client::Client;
use crate::failure::{Exit, Failure, Result};
use crate::output::{out, outln};
use crate::view::{describe, lifetime, print_json, table, PassView};
use std::path::PathBuf;
use tap_core::policy::{self, Policy};
use tap_core::timefmt::{self, to_human};
use tap_protocol::admin::{AdminReply, AdminRequest};

pub fn run(command: Command, policy_path: Option<PathBuf>, socket: PathBuf) -> Result<()> {
    if let Command::Policy(PolicyCommand::Check { file, format }) = command {
        return policy_check(file.or(policy_path), format.json);
    }
    if let Command::Store(StoreCommand::Migrate(args)) = command {
        // Runs tapd itself, as the store's owner: not a request to tapd.
        return crate::store_migrate::run(args, policy_path);
    }
    if let Command::SshEnroll(args) = command {
        // Runs on the laptop: no tapd there.
        return crate::ssh_enroll::run(args);
    }
    if policy_path.is_some() {
        return Err(Failure::new(
            Exit::Usage,
            "--policy applies to `policy check` and `store migrate` only: other commands use \
             the policy tapd reads",
        ));
    }
    let client = Client::new(Some(socket));
    match command {
        Command::Init => init(&client),
        Command::Issue(args) => issue(&client, args),
        Command::Show { user, format } => show(&client, &user, format),
        Command::List { format } => list(&client, format),
        Command::Revoke { user } => revoke(&client, &user),
        Command::Enroll { user, label } => crate::keys::enroll(&client, user.as_deref(), label),
        Command::Keys(args) => match args.action {
            Some(KeysAction::Remove { first, second }) => match second {
                Some(id) => crate::keys::remove(&client, Some(first), id),
                None => crate::keys::remove(&client, None, first),
            },
            None => crate::keys::list(&client, args.user, args.format.json),
        },
        Command::SshKeys(args) => match args.action {
            Some(SshKeysAction::Add {
                file,
                label,
                attestation,
                attestation_base64,
                user,
                format,
            }) => crate::ssh_keys::add(
                &client,
                crate::ssh_keys::AddArgs {
                    file,
                    label,
                    attestation,
                    attestation_base64,
                    user,
                    json: format.json,
                },
            ),
            Some(SshKeysAction::Remove { first, second }) => match second {
                Some(id) => crate::ssh_keys::remove(&client, Some(first), id),
                None => crate::ssh_keys::remove(&client, None, first),
            },
            Some(SshKeysAction::Challenge { format }) => {
                crate::ssh_keys::challenge(&client, format.json)
            }
            None => crate::ssh_keys::list(&client, args.user, args.format.json),
        },
        Command::AuthorizedKeys { user } => crate::ssh_keys::authorized_keys(&client, &user),
        Command::SshEnroll(_) => Ok(()),
        Command::Status { format } => crate::keys::status(&client, format.json),
        Command::Audit {
            user,
            host,
            limit,
            format,
        } => audit(&client, AdminRequest::Audit { user, host, limit }, format),
        Command::Policy(_) | Command::Store(_) => Ok(()),
    }
}

/// tapd answered with a reply of another request's kind.
pub(crate) fn out_of_turn(reply: AdminReply) -> Failure {
    Failure::new(
        Exit::Internal,
        format!("tapd answered out of turn: {reply:?}"),
    )
}

fn policy_check(file: Option<PathBuf>, json: bool) -> Result<()> {
    let path = file.unwrap_or_else(|| PathBuf::from(policy::DEFAULT_PATH));
    let policy = Policy::load(&path)
        .map_err(|e| Failure::new(Exit::Policy, format!("policy not usable: {e}")))?;
    if json {
        // The same effective policy, for programs (the Cockpit page reads the lifetime bounds).
        return print_json(&policy);
    }
    outln(&format!(
        "# {} is valid. Effective policy, defaults included:\n",
        path.display()
    ))?;
    out(&policy.to_toml())?;
    Ok(())
}

fn init(client: &Client) -> Result<()> {
    match client.admin(AdminRequest::Init {})? {
        AdminReply::StoreReady { path } => outln(&format!("Store ready at {path}.")),
        other => Err(out_of_turn(other)),
    }
}

fn issue(client: &Client, args: IssueArgs) -> Result<()> {
    let reply = client.admin(AdminRequest::Issue {
        user: args.user.clone(),
        lifetime: args.lifetime,
        start: args.start,
        one_time: args.one_time,
    })?;
    let AdminReply::Issued {
        pass: shown,
        info,
        replaced,
    } = reply
    else {
        return Err(out_of_turn(reply));
    };
    let mut view = PassView::new(&info);
    if args.format.json {
        view.pass = Some(shown.0.clone());
        return print_json(&view);
    }
    let user = &info.user;
    outln(&format!(
        "Temporary Access Pass for {user}:\n\n    {}\n",
        shown.expose()
    ))?;
    outln(&format!(
        "Valid from {} until {} ({}){}.",
        to_human(info.start),
        to_human(info.expires),
        lifetime(&info),
        if info.one_time {
            ", for one sign-in"
        } else {
            ""
        }
    ))?;
    if replaced {
        outln(&format!("It replaces the pass {user} had before."))?;
    }
    outln(&format!(
        "Give it to {user} now: it is shown only this once."
    ))
}

fn show(client: &Client, user: &str, format: Format) -> Result<()> {
    let reply = client.admin(AdminRequest::Show { user: user.into() })?;
    let AdminReply::Pass { info } = reply else {
        return Err(out_of_turn(reply));
    };
    let view = PassView::new(&info);
    if format.json {
        print_json(&view)
    } else {
        out(&describe(&view, &info))
    }
}

fn list(client: &Client, format: Format) -> Result<()> {
    let reply = client.admin(AdminRequest::List {})?;
    let AdminReply::Passes { passes, store } = reply else {
        return Err(out_of_turn(reply));
    };
    if format.json {
        return print_json(&passes.iter().map(PassView::new).collect::<Vec<_>>());
    }
    if passes.is_empty() {
        return outln(&format!("No passes in {store}."));
    }
    let rows: Vec<Vec<String>> = passes
        .iter()
        .map(|p| {
            vec![
                p.user.clone(),
                if p.reason.usable() {
                    "usable".into()
                } else {
                    "not usable".into()
                },
                format!("{:?}", p.reason),
                to_human(p.start),
                to_human(p.expires),
                if p.one_time {
                    "yes".into()
                } else {
                    "no".into()
                },
                format!("{}/{}", p.failures, p.max_failures),
            ]
        })
        .collect();
    out(&table(
        &[
            "USER", "STATUS", "REASON", "START", "EXPIRES", "ONE-TIME", "FAILURES",
        ],
        &rows,
    ))
}

fn revoke(client: &Client, user: &str) -> Result<()> {
    match client.admin(AdminRequest::Revoke { user: user.into() })? {
        AdminReply::Revoked { user } => outln(&format!("{user}'s pass is revoked.")),
        other => Err(out_of_turn(other)),
    }
}

fn audit(client: &Client, request: AdminRequest, format: Format) -> Result<()> {
    let reply = client.admin(request)?;
    let AdminReply::Audit { records } = reply else {
        return Err(out_of_turn(reply));
    };
    if format.json {
        return print_json(&records);
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|a| {
            vec![
                timefmt::to_rfc3339(a.time),
                a.host.clone(),
                a.event.clone(),
                a.user.clone(),
                a.actor.clone(),
                a.service.clone(),
                a.rhost.clone(),
                a.detail.clone(),
            ]
        })
        .collect();
    out(&table(
        &[
            "TIME", "HOST", "EVENT", "USER", "ACTOR", "SERVICE", "RHOST", "DETAIL",
        ],
        &rows,
    ))
}

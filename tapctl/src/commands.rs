//! One function per subcommand.

use crate::caller::{drop_privileges, existing_user, Caller};
use crate::cli::{Command, Format, IssueArgs, KeysAction, PolicyCommand};
use crate::failure::{Exit, Failure, Result};
use crate::output::{out, outln};
use crate::view::{describe, print_json, table, PassView};
use std::path::{Path, PathBuf};
use tap_core::accounts;
use tap_core::audit::{syslog, AuditRecord, Severity};
use tap_core::duration::Duration;
use tap_core::pass::{NewPass, PassRecord};
use tap_core::passcode;
use tap_core::policy::{self, Policy};
use tap_core::store::Store;
use tap_core::timefmt::{self, to_human, Timestamp};
use tap_store::SqliteStore;

/// Latest start a pass may be given, from now.
const MAX_START_AHEAD: Duration = Duration::from_secs(30 * 86_400);
/// A start this far in the past is taken as "now" (clock skew, slow typing).
const START_GRACE_SECS: i64 = 300;

pub struct Context {
    pub caller: Caller,
    pub policy: Policy,
    pub now: Timestamp,
}

pub fn run(command: Command, policy_path: Option<PathBuf>, now: Timestamp) -> Result<()> {
    let caller = Caller::current()?;
    if policy_path.is_some() {
        caller.require_root("choose another policy with --policy")?;
    }
    if let Command::Policy(PolicyCommand::Check { file }) = command {
        return policy_check(file.or(policy_path));
    }
    let path = policy_path.unwrap_or_else(|| PathBuf::from(policy::DEFAULT_PATH));
    let policy = load_policy(&path)?;
    let ctx = Context {
        caller,
        policy,
        now,
    };
    match command {
        Command::Init => init(&ctx),
        Command::Issue(args) => issue(&ctx, args),
        Command::Show { user, format } => show(&ctx, &user, format),
        Command::List { format } => list(&ctx, format),
        Command::Revoke { user } => revoke(&ctx, &user),
        Command::Enroll { user, label } => crate::keys::enroll(&ctx, user.as_deref(), label),
        Command::Keys(args) => match args.action {
            Some(KeysAction::Remove { first, second }) => match second {
                Some(id) => crate::keys::remove(&ctx, &first, &id),
                None => crate::keys::remove(&ctx, &ctx.caller.name, &first),
            },
            None => crate::keys::list(&ctx, args.user.as_deref(), args.format.json),
        },
        Command::Status { format } => crate::keys::status(&ctx, format.json),
        Command::Audit {
            user,
            limit,
            format,
        } => audit(&ctx, user.as_deref(), limit, format),
        Command::Policy(_) => Ok(()),
    }
}

fn load_policy(path: &Path) -> Result<Policy> {
    Policy::load(path).map_err(|e| Failure::new(Exit::Policy, format!("policy not usable: {e}")))
}

fn policy_check(file: Option<PathBuf>) -> Result<()> {
    // A user-named file is read with the user's own rights only.
    drop_privileges()?;
    let path = file.unwrap_or_else(|| PathBuf::from(policy::DEFAULT_PATH));
    let policy = load_policy(&path)?;
    outln(&format!(
        "# {} is valid. Effective policy, defaults included:\n",
        path.display()
    ))?;
    out(&policy.to_toml())?;
    Ok(())
}

pub(crate) fn open_store(ctx: &Context) -> Result<SqliteStore> {
    Ok(SqliteStore::open_for(&ctx.policy, false)?)
}

fn init(ctx: &Context) -> Result<()> {
    ctx.caller.require_root("create the store")?;
    let store = SqliteStore::open_for(&ctx.policy, true)?;
    outln(&format!("Store ready at {}.", store.path().display()))?;
    Ok(())
}

pub(crate) fn admitted(ctx: &Context, user: &str) -> Result<bool> {
    let account = existing_user(user)?;
    ctx.policy
        .scope
        .admits(user, || accounts::group_names(&account))
        .map_err(|e| Failure::new(Exit::Internal, e))
}

pub(crate) fn record(ctx: &Context, event: &str, user: &str, detail: String) -> AuditRecord {
    let mut audit = AuditRecord::new(ctx.now, event, user, &ctx.caller.name).detail(detail);
    audit.service = "tapctl".into();
    syslog(Severity::Notice, "tapctl", &audit.log_line());
    audit
}

fn issue(ctx: &Context, args: IssueArgs) -> Result<()> {
    let policy = &ctx.policy;
    ctx.caller.require_admin(policy, "issue passes")?;
    let account = existing_user(&args.user)?;
    if !policy.enabled {
        return Err(Failure::new(
            Exit::NotPermitted,
            "the policy is disabled (enabled = false): a pass would not be usable",
        ));
    }
    let groups = accounts::group_names(&account).map_err(|e| Failure::new(Exit::Internal, e))?;
    if !policy
        .scope
        .admits(&args.user, || Ok::<_, String>(groups.clone()))
        .unwrap_or(false)
    {
        return Err(Failure::new(
            Exit::NotPermitted,
            format!(
                "{} is outside the policy's [scope]: a pass would not be usable",
                args.user
            ),
        ));
    }
    if let Some(group) = groups
        .iter()
        .find(|g| policy.admins.protected_groups.contains(g))
    {
        if !ctx.caller.is_root() {
            return Err(Failure::new(
                Exit::NotPermitted,
                format!(
                    "{} is in the protected group {group:?}: only root may issue them a pass",
                    args.user
                ),
            ));
        }
    }
    let requested = args
        .lifetime
        .as_deref()
        .map(|text| {
            Duration::parse(text).map_err(|e| Failure::new(Exit::Usage, format!("--lifetime {e}")))
        })
        .transpose()?;
    let lifetime = policy
        .lifetime_for(requested)
        .map_err(|e| Failure::new(Exit::Usage, e))?;
    let start = start_time(args.start.as_deref(), ctx.now)?;
    let one_time = policy.one_time_for(args.one_time);

    let clear = passcode::generate(policy.pass.length)
        .map_err(|e| Failure::new(Exit::Internal, format!("random source: {e}")))?;
    let phc = tap_core::hashing::hash(&clear, &policy.pass.hash)
        .map_err(|e| Failure::new(Exit::Internal, e))?;
    let id = tap_core::pass::random_id()
        .map_err(|e| Failure::new(Exit::Internal, format!("random source: {e}")))?;
    let pass = PassRecord::issue(NewPass {
        user: &args.user,
        id,
        phc,
        issued_by: &ctx.caller.name,
        created: ctx.now,
        start,
        expires: start + lifetime.as_secs_i64(),
        one_time,
        length: clear.len(),
    });
    let mut store = SqliteStore::open_for(policy, ctx.caller.is_root())?;
    let replacing = store.pass(&args.user)?.is_some();
    let detail = format!(
        "{}lifetime {lifetime}, valid {} to {}",
        if one_time { "one-time, " } else { "" },
        timefmt::to_rfc3339(start),
        timefmt::to_rfc3339(pass.expires)
    );
    let event = if replacing {
        "pass.replaced"
    } else {
        "pass.issued"
    };
    store.put_pass(&pass, &record(ctx, event, &args.user, detail))?;

    let shown = passcode::display(&clear);
    let mut view = PassView::new(&pass, policy, true, ctx.now);
    if args.format.json {
        view.pass = Some(shown);
        print_json(&view)?;
        return Ok(());
    }
    outln(&format!(
        "Temporary Access Pass for {}:\n\n    {}\n",
        args.user,
        shown.as_str()
    ))?;
    outln(&format!(
        "Valid from {} until {} ({lifetime}){}.",
        to_human(start),
        to_human(pass.expires),
        if one_time { ", for one sign-in" } else { "" }
    ))?;
    if replacing {
        outln(&format!("It replaces the pass {} had before.", args.user))?;
    }
    outln(&format!(
        "Give it to {} now: it is shown only this once.",
        args.user
    ))?;
    Ok(())
}

fn start_time(text: Option<&str>, now: Timestamp) -> Result<Timestamp> {
    let Some(text) = text else { return Ok(now) };
    let start = match text.strip_prefix('+') {
        Some(offset) => {
            let offset = Duration::parse(offset)
                .map_err(|e| Failure::new(Exit::Usage, format!("--start {e}")))?;
            now + offset.as_secs_i64()
        }
        None => timefmt::parse_rfc3339(text).map_err(|e| {
            Failure::new(
                Exit::Usage,
                format!("--start {e}; or +DURATION such as +30m"),
            )
        })?,
    };
    if start < now - START_GRACE_SECS {
        return Err(Failure::new(
            Exit::Usage,
            format!("--start {} is in the past", timefmt::to_rfc3339(start)),
        ));
    }
    if start > now + MAX_START_AHEAD.as_secs_i64() {
        return Err(Failure::new(
            Exit::Usage,
            format!("--start may be at most {MAX_START_AHEAD} ahead"),
        ));
    }
    Ok(start.max(now))
}

fn show(ctx: &Context, user: &str, format: Format) -> Result<()> {
    ctx.caller
        .require_self_or_admin(&ctx.policy, user, "show another user's pass")?;
    let admitted = admitted(ctx, user)?;
    let store = open_store(ctx)?;
    let pass = store
        .pass(user)?
        .ok_or_else(|| Failure::new(Exit::NotFound, format!("{user} has no Temporary Access Pass; an administrator issues one with `tapctl issue {user}`")))?;
    let view = PassView::new(&pass, &ctx.policy, admitted, ctx.now);
    if format.json {
        print_json(&view)?;
    } else {
        out(&describe(&view, &pass))?;
    }
    Ok(())
}

fn list(ctx: &Context, format: Format) -> Result<()> {
    ctx.caller.require_admin(&ctx.policy, "list passes")?;
    let store = open_store(ctx)?;
    let mut views = Vec::new();
    for pass in store.passes()? {
        // A pass of a user deleted since is listed as out of scope.
        let admitted = admitted(ctx, &pass.user).unwrap_or(false);
        views.push((PassView::new(&pass, &ctx.policy, admitted, ctx.now), pass));
    }
    if format.json {
        print_json(&views.iter().map(|(v, _)| v).collect::<Vec<_>>())?;
        return Ok(());
    }
    if views.is_empty() {
        outln(&format!("No passes in {}.", store.path().display()))?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|(v, p)| {
            vec![
                v.user.clone(),
                if v.usable {
                    "usable".into()
                } else {
                    "not usable".into()
                },
                format!("{:?}", v.reason),
                to_human(p.start),
                to_human(p.expires),
                if p.one_time {
                    "yes".into()
                } else {
                    "no".into()
                },
                format!("{}/{}", p.failures, v.max_failures),
            ]
        })
        .collect();
    out(&table(
        &[
            "USER", "STATUS", "REASON", "START", "EXPIRES", "ONE-TIME", "FAILURES",
        ],
        &rows,
    ))?;
    Ok(())
}

fn revoke(ctx: &Context, user: &str) -> Result<()> {
    ctx.caller.require_admin(&ctx.policy, "revoke passes")?;
    let mut store = open_store(ctx)?;
    if store.revoke(
        user,
        ctx.now,
        &record(ctx, "pass.revoked", user, String::new()),
    )? {
        outln(&format!("{user}'s pass is revoked."))?;
        Ok(())
    } else {
        // A removed account's leftover pass is still revoked above; with
        // nothing to revoke, an unknown name is reported as such.
        existing_user(user)?;
        Err(Failure::new(
            Exit::NotFound,
            format!("{user} has no pass to revoke"),
        ))
    }
}

fn audit(ctx: &Context, user: Option<&str>, limit: u32, format: Format) -> Result<()> {
    match user {
        Some(user) => ctx.caller.require_self_or_admin(
            &ctx.policy,
            user,
            "read another user's audit records",
        )?,
        None => ctx
            .caller
            .require_admin(&ctx.policy, "read the audit trail")?,
    }
    let records = open_store(ctx)?.audit(user, limit)?;
    if let Some(user) = user.filter(|_| records.is_empty()) {
        // The trail outlives the account (a removed user's records are
        // shown); a name with no records and no account is not found.
        existing_user(user)?;
    }
    if format.json {
        print_json(&records)?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|a| {
            vec![
                timefmt::to_rfc3339(a.time),
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
            "TIME", "EVENT", "USER", "ACTOR", "SERVICE", "RHOST", "DETAIL",
        ],
        &rows,
    ))?;
    Ok(())
}

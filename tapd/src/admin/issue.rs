//! `issue`: a new pass for a user the policy covers, replacing any old one.

use super::caller::groups_of;
use super::info::pass_info;
use super::record::{record, store_failed};
use super::Ask;
use tap_core::audit::Event;
use tap_core::duration::Duration;
use tap_core::pass::{NewPass, PassRecord};
use tap_core::passcode;
use tap_core::timefmt::{self, Timestamp};
use tap_protocol::admin::AdminReply;
use tap_protocol::secret::Secret;
use tap_protocol::{ErrorKind, Refusal};

/// Latest start a pass may be given, from now.
const MAX_START_AHEAD: Duration = Duration::from_secs(30 * 86_400);
/// A start this far in the past is taken as "now" (clock skew, slow typing).
const START_GRACE_SECS: i64 = 300;

fn bad(message: impl ToString) -> Refusal {
    Refusal::new(ErrorKind::BadRequest, message.to_string())
}

fn not_permitted(message: String) -> Refusal {
    Refusal::new(ErrorKind::NotPermitted, message)
}

fn internal(message: impl ToString) -> Refusal {
    Refusal::new(ErrorKind::Internal, message.to_string())
}

pub fn issue(
    ask: &mut Ask<'_, '_>,
    user: &str,
    lifetime: Option<&str>,
    start: Option<&str>,
    one_time: bool,
) -> Result<AdminReply, Refusal> {
    let policy = ask.ctx.policy.clone();
    let now = ask.ctx.now;
    ask.caller.require_admin(&policy, "issue passes")?;
    let groups = groups_of(ask.users, user)?;
    if !policy.enabled {
        return Err(not_permitted(
            "the policy is disabled (enabled = false): a pass would not be usable".into(),
        ));
    }
    if !policy
        .scope
        .admits(user, || Ok::<_, ()>(groups.clone()))
        .unwrap_or(false)
    {
        return Err(not_permitted(format!(
            "{user} is outside the policy's [scope]: a pass would not be usable"
        )));
    }
    if let Some(group) = groups
        .iter()
        .find(|g| policy.admins.protected_groups.contains(g))
    {
        if !ask.caller.is_root() {
            return Err(not_permitted(format!(
                "{user} is in the protected group {group:?}: only root may issue them a pass"
            )));
        }
    }
    let requested = lifetime
        .map(|text| Duration::parse(text).map_err(|e| bad(format!("--lifetime {e}"))))
        .transpose()?;
    let lifetime = policy.lifetime_for(requested).map_err(bad)?;
    let start = start_time(start, now)?;
    let one_time = policy.one_time_for(one_time);

    let clear = passcode::generate(policy.pass.length)
        .map_err(|e| internal(format!("random source: {e}")))?;
    // Issuing hashes under the same bound as sign-ins.
    let mut phc = None;
    ask.ctx.hashes.run(&mut |memory| {
        phc = Some(tap_core::hashing::hash_in(
            &clear,
            &policy.pass.hash,
            memory,
        ))
    });
    let phc = phc
        .ok_or_else(|| internal("the pass was not hashed"))?
        .map_err(internal)?;
    let id = tap_core::pass::random_id().map_err(|e| internal(format!("random source: {e}")))?;
    let pass = PassRecord::issue(NewPass {
        user,
        id,
        phc,
        issued_by: &ask.caller.name,
        created: now,
        start,
        expires: start + lifetime.as_secs_i64(),
        one_time,
        length: clear.len(),
    });
    let replacing = ask.ctx.store.pass(user).map_err(store_failed)?.is_some();
    let detail = format!(
        "{}lifetime {lifetime}, valid {} to {}",
        if one_time { "one-time, " } else { "" },
        timefmt::to_rfc3339(start),
        timefmt::to_rfc3339(pass.expires)
    );
    let event = if replacing {
        Event::PassReplaced
    } else {
        Event::PassIssued
    };
    let audit = record(ask, event, user, detail);
    ask.ctx
        .store
        .put_pass(&pass, &audit)
        .map_err(store_failed)?;
    Ok(AdminReply::Issued {
        pass: Secret::new(&passcode::display(&clear)),
        // The policy admits the user: checked above.
        info: pass_info(&pass, &policy, true, now),
        replaced: replacing,
    })
}

fn start_time(text: Option<&str>, now: Timestamp) -> Result<Timestamp, Refusal> {
    let Some(text) = text else { return Ok(now) };
    let start = match text.strip_prefix('+') {
        Some(offset) => {
            let offset = Duration::parse(offset).map_err(|e| bad(format!("--start {e}")))?;
            now + offset.as_secs_i64()
        }
        None => timefmt::parse_rfc3339(text)
            .map_err(|e| bad(format!("--start {e}; or +DURATION such as +30m")))?,
    };
    if start < now - START_GRACE_SECS {
        return Err(bad(format!(
            "--start {} is in the past",
            timefmt::to_rfc3339(start)
        )));
    }
    if start > now + MAX_START_AHEAD.as_secs_i64() {
        return Err(bad(format!(
            "--start may be at most {MAX_START_AHEAD} ahead"
        )));
    }
    Ok(start.max(now))
}

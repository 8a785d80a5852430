//! `audit`: the trail, for admins; a user's own records, for that user.

use super::caller::existing_user;
use super::info::audit_entry;
use super::record::store_failed;
use super::Ask;
use tap_core::store::AuditFilter;
use tap_protocol::admin::AdminReply;
use tap_protocol::Refusal;

pub fn audit(
    ask: &mut Ask<'_, '_>,
    user: Option<&str>,
    host: Option<&str>,
    limit: u32,
) -> Result<AdminReply, Refusal> {
    let policy = ask.ctx.policy.clone();
    match user {
        Some(user) => {
            ask.caller
                .require_self_or_admin(&policy, user, "read another user's audit records")?
        }
        None => ask.caller.require_admin(&policy, "read the audit trail")?,
    }
    let records = ask
        .ctx
        .store
        .audit_where(AuditFilter { user, host }, limit)
        .map_err(store_failed)?;
    if let Some(user) = user.filter(|_| records.is_empty()) {
        // The trail outlives the account (a removed user's records are
        // shown); a name with no records and no account is not found.
        existing_user(ask.users, user)?;
    }
    Ok(AdminReply::Audit {
        records: records.into_iter().map(audit_entry).collect(),
    })
}

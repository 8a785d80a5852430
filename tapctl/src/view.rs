//! What tapctl prints about a pass: one view, as JSON or as text.

use serde::Serialize;
use tap_core::audit::escape_controls;
use tap_core::pass::Reason;
use tap_core::timefmt::{to_human, to_rfc3339, Timestamp};
use tap_protocol::admin::PassInfo;

/// The fields of Entra's temporaryAccessPassMethod, plus ours.
#[derive(Debug, Serialize)]
pub struct PassView {
    pub user: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The clear pass, only in `issue --json`; zeroed when dropped.
    pub pass: Option<zeroize::Zeroizing<String>>,
    pub start: String,
    pub expires: String,
    pub lifetime: String,
    pub one_time: bool,
    pub usable: bool,
    pub reason: Reason,
    pub reason_text: &'static str,
    pub failures: u32,
    pub max_failures: u32,
    pub issued_by: String,
    pub created: String,
    pub used_at: Option<String>,
    pub last_used: Option<String>,
    pub locked_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl PassView {
    pub fn new(pass: &PassInfo) -> Self {
        let time = |t: Option<Timestamp>| t.map(to_rfc3339);
        PassView {
            user: pass.user.clone(),
            pass: None,
            start: to_rfc3339(pass.start),
            expires: to_rfc3339(pass.expires),
            lifetime: lifetime(pass).to_string(),
            one_time: pass.one_time,
            usable: pass.reason.usable(),
            reason: pass.reason,
            reason_text: pass.reason.explain(),
            failures: pass.failures,
            max_failures: pass.max_failures,
            issued_by: pass.issued_by.clone(),
            created: to_rfc3339(pass.created),
            used_at: time(pass.used_at),
            last_used: time(pass.last_used),
            locked_at: time(pass.locked_at),
            revoked_at: time(pass.revoked_at),
        }
    }
}

/// How long the pass lives, start to end.
pub fn lifetime(pass: &PassInfo) -> tap_core::duration::Duration {
    tap_core::duration::Duration::from_secs(u64::try_from(pass.expires - pass.start).unwrap_or(0))
}

/// `alice's pass is usable.` and the details, for `tapctl show`.
pub fn describe(view: &PassView, pass: &PassInfo) -> String {
    let mut out = format!(
        "Temporary Access Pass for {}: {}\n",
        view.user, view.reason_text
    );
    let mut row = |label: &str, value: String| out.push_str(&format!("  {label:<11}{value}\n"));
    row("Reason:", format!("{:?}", view.reason));
    row(
        "Valid:",
        format!(
            "{} to {} ({})",
            to_human(pass.start),
            to_human(pass.expires),
            view.lifetime
        ),
    );
    row(
        "One-time:",
        match (pass.one_time, pass.used_at) {
            (false, _) => "no".into(),
            (true, None) => "yes, not used yet".into(),
            (true, Some(at)) => format!("yes, used {}", to_human(at)),
        },
    );
    row(
        "Failures:",
        format!("{} of {}", pass.failures, view.max_failures),
    );
    if let Some(at) = pass.last_used {
        row("Last used:", to_human(at));
    }
    if let Some(at) = pass.locked_at {
        row("Locked:", to_human(at));
    }
    if let Some(at) = pass.revoked_at {
        row("Revoked:", to_human(at));
    }
    row(
        "Issued:",
        format!("{} by {}", to_human(pass.created), pass.issued_by),
    );
    out
}

/// A plain text table with columns sized to their widest cell. Cells may
/// hold what users or remote hosts chose (a key label, an rhost): control
/// characters are shown escaped, never sent to the terminal.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| escape_controls(cell)).collect())
        .collect();
    let rows = &rows;
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

pub fn print_json(value: &impl Serialize) -> crate::failure::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| {
        crate::failure::Failure::new(
            crate::failure::Exit::Internal,
            format!("cannot render JSON: {e}"),
        )
    })?;
    crate::output::outln(&text)
}

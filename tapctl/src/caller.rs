//! Who runs tapctl, for the one check made before asking tapd (enrolling
//! for someone else). tapd itself learns the caller from the socket.

use crate::failure::{Exit, Failure, Result};

pub fn own_name() -> Result<String> {
    let uid = crate::sys::uid();
    tap_core::accounts::name_by_uid(uid)
        .ok_or_else(|| Failure::new(Exit::Internal, format!("your uid {uid} has no user name")))
}

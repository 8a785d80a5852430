//! OpenSSH keys: the stored record.

pub mod record;

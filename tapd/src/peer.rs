//! The peer of a connection, from the kernel (`SO_PEERCRED`).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
    /// Root, or sshd's AuthorizedKeysCommandUser (`[ssh] command_user`):
    /// never capped and served from root's queue, so neither a flood of
    /// users nor of SSH connection attempts holds up a login.
    pub privileged: bool,
}

impl Peer {
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// For the audit: recorded beside what the client reports.
    pub fn describe(&self) -> String {
        format!("pid={} uid={}", self.pid, self.uid)
    }
}

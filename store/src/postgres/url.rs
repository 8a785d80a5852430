//! The policy's `url`, read as libpq reads a `postgresql://` URL, into
//! what the connector needs. Our own parser, because tokio-postgres' refuses
//! `sslmode=verify-full` and `sslrootcert` (it knows disable/prefer/require
//! only); parameters outside the short list below are refused, not ignored.

use std::net::IpAddr;
use std::path::PathBuf;
use tap_core::store::StoreError;

/// One server to try, in the URL's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Server {
    /// `name` is what the certificate must carry; `addr`, when given
    /// (`hostaddr=`), is where to connect instead of looking `name` up.
    Tcp {
        name: String,
        addr: Option<IpAddr>,
        port: u16,
    },
    /// A directory holding the server's socket (local, no TLS: libpq
    /// ignores sslmode there too).
    Unix { dir: PathBuf, port: u16 },
}

/// Where the certificate authority comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Roots {
    File(PathBuf),
    /// `sslrootcert=system`: OpenSSL's default store.
    System,
}

/// The URL's content, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Target {
    pub servers: Vec<Server>,
    pub user: String,
    pub dbname: String,
    /// None only when every server is a Unix socket and sslmode=disable,
    /// or when no TCP server is named.
    pub roots: Option<Roots>,
    pub read_write: bool,
    pub application_name: Option<String>,
    pub options: Option<String>,
}

fn bad(why: impl std::fmt::Display) -> StoreError {
    // Never echo the URL itself: it may hold a password someone put there.
    StoreError::config(format!("postgresql url: {why}"))
}

/// Reads `url`; `ca_file` is the policy's, used when the URL names none.
pub(super) fn parse(url: &str, ca_file: Option<&PathBuf>) -> Result<Target, StoreError> {
    let rest = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
        .ok_or_else(|| bad("must start with postgresql://"))?;
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = before_query.split_once('/').unwrap_or((before_query, ""));
    let (userinfo, hostlist) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let mut user = None;
    if let Some(info) = userinfo {
        if info.contains(':') {
            return Err(bad(
                "holds a password; put it in the password_file the policy names",
            ));
        }
        user = Some(decode(info)?);
    }
    let mut dbname = (!path.is_empty()).then(|| decode(path)).transpose()?;

    let mut names: Vec<(String, Option<u16>)> = Vec::new();
    if !hostlist.is_empty() {
        for item in hostlist.split(',') {
            names.push(split_host_port(item)?);
        }
    }
    let mut sslmode = None;
    let mut rootcert = None;
    let mut hostaddrs: Vec<IpAddr> = Vec::new();
    let mut ports: Vec<u16> = Vec::new();
    let mut read_write = false;
    let mut application_name = None;
    let mut options = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| bad(format!("parameter {pair:?} has no value")))?;
        let value = decode(value)?;
        match key {
            "sslmode" => sslmode = Some(value),
            "sslrootcert" => rootcert = Some(value),
            "host" if names.is_empty() => {
                for item in value.split(',') {
                    names.push((item.to_string(), None));
                }
            }
            "host" => return Err(bad("hosts named twice (before the path and in host=)")),
            "hostaddr" => {
                for item in value.split(',') {
                    hostaddrs.push(
                        item.parse()
                            .map_err(|_| bad(format!("hostaddr {item:?} is not an IP address")))?,
                    );
                }
            }
            "port" => {
                for item in value.split(',') {
                    ports.push(parse_port(item)?);
                }
            }
            "user" => user = Some(value),
            "dbname" => dbname = Some(value),
            "target_session_attrs" => match value.as_str() {
                "read-write" => read_write = true,
                "any" => read_write = false,
                other => {
                    return Err(bad(format!(
                        "target_session_attrs={other}: only read-write or any"
                    )))
                }
            },
            "application_name" => application_name = Some(value),
            "options" => options = Some(value),
            "password" => {
                return Err(bad(
                    "holds a password; put it in the password_file the policy names",
                ))
            }
            "connect_timeout" => {
                return Err(bad(
                    "connect_timeout belongs in the policy's [store] connect_timeout, not the URL",
                ))
            }
            other => return Err(bad(format!("parameter {other:?} is not supported"))),
        }
    }
    if names.is_empty() {
        return Err(bad("names no host"));
    }
    if !hostaddrs.is_empty() && hostaddrs.len() != names.len() {
        return Err(bad("hostaddr must give one address per host"));
    }
    if ports.len() > 1 && ports.len() != names.len() {
        return Err(bad("port must give one port, or one per host"));
    }
    let mut servers = Vec::new();
    for (index, (name, own_port)) in names.into_iter().enumerate() {
        let port = own_port
            .or_else(|| ports.get(index).or(ports.first()).copied())
            .unwrap_or(5432);
        if name.starts_with('/') {
            servers.push(Server::Unix {
                dir: PathBuf::from(name),
                port,
            });
        } else if name.is_empty() {
            return Err(bad("an empty host name"));
        } else {
            servers.push(Server::Tcp {
                name,
                addr: hostaddrs.get(index).copied(),
                port,
            });
        }
    }
    let any_tcp = servers.iter().any(|s| matches!(s, Server::Tcp { .. }));
    let roots = match sslmode.as_deref() {
        None | Some("verify-full") if any_tcp => Some(roots(rootcert, ca_file)?),
        None | Some("verify-full") => None,
        Some("disable") if !any_tcp => None,
        Some("disable") => {
            return Err(bad(
                "sslmode=disable over TCP: the store's traffic and the role's \
                 password exchange would be open to the network; use verify-full",
            ))
        }
        Some(other) => {
            return Err(bad(format!(
                "sslmode={other} does not check the server's name; use verify-full"
            )))
        }
    };
    let user = user.ok_or_else(|| bad("names no user (postgresql://ROLE@host/db)"))?;
    let dbname = dbname.unwrap_or_else(|| user.clone());
    Ok(Target {
        servers,
        user,
        dbname,
        roots,
        read_write,
        application_name,
        options,
    })
}

fn roots(rootcert: Option<String>, ca_file: Option<&PathBuf>) -> Result<Roots, StoreError> {
    match (rootcert.as_deref(), ca_file) {
        (Some("system"), None) => Ok(Roots::System),
        (Some(path), None) => Ok(Roots::File(PathBuf::from(path))),
        (None, Some(file)) => Ok(Roots::File(file.clone())),
        (Some(path), Some(file)) if std::path::Path::new(path) == file.as_path() => {
            Ok(Roots::File(file.clone()))
        }
        (Some(_), Some(_)) => Err(bad(
            "sslrootcert and the policy's ca_file name different files; keep one",
        )),
        (None, None) => Err(bad(
            "sslmode=verify-full needs the CA that signed the server's certificate: \
             the policy's ca_file (or sslrootcert=system for the system's store)",
        )),
    }
}

fn split_host_port(item: &str) -> Result<(String, Option<u16>), StoreError> {
    // [v6]:port, name:port, or a name alone.
    if let Some(inner) = item.strip_prefix('[') {
        let (addr, after) = inner
            .split_once(']')
            .ok_or_else(|| bad("an unclosed [ in a host"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(parse_port(p)?),
            None if after.is_empty() => None,
            None => return Err(bad(format!("unexpected {after:?} after a host"))),
        };
        return Ok((addr.to_string(), port));
    }
    match item.rsplit_once(':') {
        Some((host, port)) => Ok((decode(host)?, Some(parse_port(port)?))),
        None => Ok((decode(item)?, None)),
    }
}

fn parse_port(text: &str) -> Result<u16, StoreError> {
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(bad(format!("port {text:?} is not a port number"))),
    }
}

/// Percent-decoding, as URLs carry `/` (a socket directory) and the like.
fn decode(text: &str) -> Result<String, StoreError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad("a broken %-escape"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad("a %-escape that is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tap_core::store::StoreErrorKind;

    fn ca() -> PathBuf {
        PathBuf::from("/etc/pam_tap/db-ca.pem")
    }

    #[test]
    fn several_hosts_read_write_and_verify_full() {
        let target = parse(
            "postgresql://pam_tap_host@db1,db2:5433/pam_tap?target_session_attrs=read-write&sslmode=verify-full",
            Some(&ca()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            target.servers,
            vec![
                Server::Tcp {
                    name: "db1".into(),
                    addr: None,
                    port: 5432
                },
                Server::Tcp {
                    name: "db2".into(),
                    addr: None,
                    port: 5433
                }
            ]
        );
        assert!(target.read_write);
        assert_eq!(target.roots, Some(Roots::File(ca())));
        assert_eq!(
            (target.user.as_str(), target.dbname.as_str()),
            ("pam_tap_host", "pam_tap")
        );
    }

    #[test]
    fn a_socket_directory_needs_no_tls() {
        let target = parse(
            "postgresql://pam_tap_admin@%2Frun%2Fpostgresql/pam_tap",
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            target.servers,
            vec![Server::Unix {
                dir: "/run/postgresql".into(),
                port: 5432
            }]
        );
        assert_eq!(target.roots, None);
    }

    #[test]
    fn weak_or_unknown_settings_are_refused_with_the_reason() {
        for (url, wanted) in [
            ("mysql://a@b/c", "must start with postgresql://"),
            ("postgresql://a:secret@db/p", "password_file"),
            ("postgresql://a@db/p?password=x", "password_file"),
            (
                "postgresql://a@db/p?sslmode=require",
                "sslmode=require does not check",
            ),
            (
                "postgresql://a@db/p?sslmode=disable",
                "sslmode=disable over TCP",
            ),
            ("postgresql://a@db/p?sslmode=verify-full", "needs the CA"),
            (
                "postgresql://a@db/p?sslcert=x",
                "\"sslcert\" is not supported",
            ),
            (
                "postgresql://a@db/p?connect_timeout=3",
                "belongs in the policy",
            ),
            ("postgresql://a@db:99999/p", "not a port number"),
            ("postgresql://db/p?sslrootcert=system", "names no user"),
            (
                "postgresql://a@db1,db2/p?hostaddr=127.0.0.1&sslrootcert=system",
                "one address per host",
            ),
        ] {
            let error = parse(url, None).err();
            let kind = error.as_ref().map(StoreError::kind);
            assert_eq!(kind, Some(StoreErrorKind::Config), "{url}");
            let error = error.map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains(wanted), "{url}: {error}");
            assert!(!error.contains("secret"), "{error}");
        }
    }
}

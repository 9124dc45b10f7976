//! The subset of OpenSSH's client configuration (`ssh_config(5)`) that reaching a libvirt
//! host needs, pure: the `qemu+ssh://` URI's destination ([`remote_host`]) and what the
//! user's config says about it ([`resolve`]: `Host` blocks, `HostName`, `Port`, `User`,
//! `IdentityFile`, `ProxyJump`). As in OpenSSH, the destination's own user and port win, then
//! the first value the config gives; `IdentityFile`s add up. `Match all` applies; any other
//! `Match` block is skipped, as are `Include` and every other keyword.

use std::fmt;
use std::path::{Path, PathBuf};

/// `[user@]host[:port]`: a libvirt URI's host or one `ProxyJump` hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl fmt::Display for Destination {
    /// As `ssh -J` and `ProxyJump` take it: `[user@]host[:port]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        match (self.host.contains(':'), self.port) {
            (true, Some(port)) => write!(f, "[{}]:{port}", self.host),
            (false, Some(port)) => write!(f, "{}:{port}", self.host),
            (_, None) => write!(f, "{}", self.host),
        }
    }
}

/// Everything needed to log in to one host, resolved from a [`Destination`] and the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    /// The name as given (what `Host` patterns matched).
    pub host: String,
    /// The name or address connected to (`HostName`, else `host`).
    pub hostname: String,
    pub port: u16,
    pub user: String,
    /// Private keys to try, in order (OpenSSH's defaults when the config names none).
    pub identity_files: Vec<PathBuf>,
    /// The hops to go through first, outermost first (empty: a direct TCP connection).
    pub proxy_jump: Vec<Destination>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("libvirt uri {uri}: {why}: use qemu+ssh://[user@]host[:port]/system")]
    Uri { uri: String, why: String },
    #[error("ssh config line {line}: {why}: fix it or check with `ssh -G HOST`")]
    Line { line: usize, why: String },
}

impl crate::failure::Classify for ConfigError {
    fn class(&self) -> crate::failure::ExitClass {
        crate::failure::ExitClass::Host
    }
}

/// The SSH destination of a libvirt URI whose transport is SSH (`qemu+ssh://`, also
/// `+libssh`/`+libssh2`); `None` for a local URI or any other transport.
pub fn remote_host(uri: &str) -> Result<Option<Destination>, ConfigError> {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Ok(None);
    };
    let transport = scheme.split_once('+').map(|(_, t)| t);
    if !matches!(transport, Some("ssh" | "libssh" | "libssh2")) {
        return Ok(None);
    }
    let bad = |why: &str| ConfigError::Uri {
        uri: uri.to_string(),
        why: why.to_string(),
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let dest = destination(authority).map_err(|why| bad(&why))?;
    Ok(Some(dest))
}

/// `[user@]host[:port]`, `host` possibly a bracketed IPv6 address; `ssh://` allowed before.
fn destination(text: &str) -> Result<Destination, String> {
    let text = text.strip_prefix("ssh://").unwrap_or(text);
    let (user, hostport) = match text.rsplit_once('@') {
        Some((user, rest)) if !user.is_empty() => (Some(user.to_string()), rest),
        Some(_) => return Err("empty user name".into()),
        None => (None, text),
    };
    let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
        let (host, after) = inner.split_once(']').ok_or("unclosed [")?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    let port = match port {
        Some(p) => Some(
            p.parse()
                .map_err(|_| format!("port {p:?} is not a number"))?,
        ),
        None => None,
    };
    Ok(Destination {
        user,
        host: host.to_string(),
        port,
    })
}

/// The first values the config gives for a host (and the identity files, all of them).
#[derive(Default)]
struct Found {
    hostname: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    identity_files: Vec<String>,
    proxy_jump: Option<Vec<Destination>>,
}

/// Resolves `dest` with the config text `config` (empty: none), `home` for `~` and the
/// local user name, the default login.
pub fn resolve(
    dest: &Destination,
    config: &str,
    home: &Path,
    local_user: &str,
) -> Result<HostSpec, ConfigError> {
    let found = scan(config, &dest.host)?;
    let hostname = match found.hostname {
        Some(h) => h.replace("%h", &dest.host).replace("%%", "%"),
        None => dest.host.clone(),
    };
    let user = dest.user.clone().or(found.user);
    let user = user.unwrap_or_else(|| local_user.to_string());
    let mut identity_files = found.identity_files;
    if identity_files.is_empty() {
        identity_files = ["id_ed25519", "id_ecdsa", "id_rsa"]
            .map(|k| format!("~/.ssh/{k}"))
            .to_vec();
    }
    let expand = |file: &str| {
        let home = home.display().to_string();
        let file = match file.strip_prefix('~') {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("{home}{rest}"),
            _ => file.to_string(),
        };
        let tokens = [
            ("%d", &home),
            ("%u", &local_user.to_string()),
            ("%r", &user),
        ];
        let file = tokens.iter().fold(file, |f, (t, v)| f.replace(t, v));
        PathBuf::from(file.replace("%h", &hostname).replace("%%", "%"))
    };
    Ok(HostSpec {
        host: dest.host.clone(),
        port: dest.port.or(found.port).unwrap_or(22),
        identity_files: identity_files.iter().map(|f| expand(f)).collect(),
        proxy_jump: found.proxy_jump.unwrap_or_default(),
        user,
        hostname,
    })
}

/// Reads the options of the blocks that apply to `host`, first value winning.
fn scan(config: &str, host: &str) -> Result<Found, ConfigError> {
    let mut found = Found::default();
    let mut applies = true;
    for (index, raw) in config.lines().enumerate() {
        let line = index + 1;
        let bad = |why: String| ConfigError::Line { line, why };
        let Some((keyword, args)) = split_line(raw) else {
            continue;
        };
        let first = args.first().cloned().unwrap_or_default();
        match keyword.as_str() {
            "host" => applies = host_matches(&args, host),
            "match" => applies = args.len() == 1 && first.eq_ignore_ascii_case("all"),
            _ if !applies => {}
            "hostname" => found.hostname = found.hostname.or(Some(first)),
            "user" => found.user = found.user.or(Some(first)),
            "identityfile" => found.identity_files.push(first),
            "port" if found.port.is_none() => {
                let port = first.parse();
                found.port =
                    Some(port.map_err(|_| bad(format!("port {first:?} is not a number")))?);
            }
            "proxyjump" if found.proxy_jump.is_none() => {
                found.proxy_jump = Some(proxy_jump(&first).map_err(bad)?);
            }
            _ => {}
        }
    }
    Ok(found)
}

/// A `ProxyJump` value: `none`, or comma-separated hops.
fn proxy_jump(value: &str) -> Result<Vec<Destination>, String> {
    if value.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    value
        .split(',')
        .map(|hop| destination(hop).map_err(|why| format!("ProxyJump hop {hop:?}: {why}")))
        .collect()
}

/// A config line as its lowercased keyword and arguments (`Keyword args`, `Keyword=args`,
/// double quotes grouping); `None` for blank lines and comments.
fn split_line(line: &str) -> Option<(String, Vec<String>)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let end = line.find(|c: char| c.is_whitespace() || c == '=');
    let (keyword, rest) = line.split_at(end.unwrap_or(line.len()));
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest);
    let mut args = Vec::new();
    let mut word: Option<String> = None;
    let mut quoted = false;
    for c in rest.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                word.get_or_insert_default();
            }
            c if c.is_whitespace() && !quoted => args.extend(word.take()),
            c => word.get_or_insert_default().push(c),
        }
    }
    args.extend(word);
    Some((keyword.to_ascii_lowercase(), args))
}

/// A `Host` line's patterns against `host`: some pattern matches and no `!pattern` does.
fn host_matches(patterns: &[String], host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let mut any = false;
    for pattern in patterns {
        let pattern = pattern.to_ascii_lowercase();
        match pattern.strip_prefix('!') {
            Some(negated) if glob(negated.as_bytes(), host.as_bytes()) => return false,
            Some(_) => {}
            None => any |= glob(pattern.as_bytes(), host.as_bytes()),
        }
    }
    any
}

/// `*` (any run) and `?` (one character) wildcards.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob(rest, &text[i..])),
        Some((&p, rest)) => match text.split_first() {
            Some((&t, tail)) => (p == b'?' || p == t) && glob(rest, tail),
            None => false,
        },
    }
}

#[cfg(test)]
mod tests;

//! The network half of `lab verify`: the first bytes of MySQL, AMQP 0-9-1 and memcached
//! spoken by `lab` itself over a TCP connection the checking node opens (an SSH direct-tcpip
//! channel, see [`crate::guest::Guest::connect_tcp`]). Nothing is interpreted on the guest, so
//! the same code checks CentOS 7 (Python 2.7) and Debian 12. Each function reads just enough
//! to prove what it claims, and reports what it saw.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A conversation that went wrong: the peer closed, or said something the protocol does not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("{0}")]
    Io(String),
    #[error("not {protocol}: {what}")]
    Protocol {
        protocol: &'static str,
        what: String,
    },
}

fn io(e: std::io::Error) -> WireError {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => WireError::Io("the connection closed".into()),
        _ => WireError::Io(e.to_string()),
    }
}

fn protocol(protocol: &'static str, what: impl Into<String>) -> WireError {
    WireError::Protocol {
        protocol,
        what: what.into(),
    }
}

/// What a MySQL/MariaDB server says first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MysqlHello {
    /// A handshake (protocol 10) with the server's version.
    Greeting { version: String },
    /// An error packet instead, e.g. 1130 "Host ... is not allowed to connect": still the
    /// server answering.
    Refused { code: u16, message: String },
}

/// Reads the server's first packet (the server speaks first).
pub async fn mysql_hello<S: AsyncRead + Unpin>(s: &mut S) -> Result<MysqlHello, WireError> {
    let mut header = [0u8; 4];
    s.read_exact(&mut header).await.map_err(io)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
    if !(1..=4096).contains(&len) {
        return Err(protocol("mysql", format!("a first packet of {len} bytes")));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.map_err(io)?;
    match body[0] {
        10 => {
            let end = body[1..]
                .iter()
                .position(|&b| b == 0)
                .ok_or_else(|| protocol("mysql", "a greeting without a NUL-terminated version"))?;
            Ok(MysqlHello::Greeting {
                version: String::from_utf8_lossy(&body[1..1 + end]).into_owned(),
            })
        }
        0xff if len >= 3 => Ok(MysqlHello::Refused {
            code: u16::from_le_bytes([body[1], body[2]]),
            message: String::from_utf8_lossy(&body[3..]).into_owned(),
        }),
        b => Err(protocol(
            "mysql",
            format!("a first packet of type {b:#04x}"),
        )),
    }
}

/// The outcome of an AMQP 0-9-1 PLAIN login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmqpLogin {
    /// The broker went on to Connection.Tune: the login was accepted.
    Accepted,
    /// The broker answered Connection.Close (with its reply) or dropped the connection.
    Refused(String),
}

const FRAME_METHOD: u8 = 1;
const FRAME_END: u8 = 0xce;
/// class 10 (connection), methods start, start-ok, tune, close.
const START: (u16, u16) = (10, 10);
const START_OK: (u16, u16) = (10, 11);
const TUNE: (u16, u16) = (10, 30);
const CLOSE: (u16, u16) = (10, 50);

/// One method frame on channel 0: its (class, method) and arguments. `None` when the peer
/// closed the connection at a frame boundary.
async fn method_frame<S: AsyncRead + Unpin>(
    s: &mut S,
) -> Result<Option<((u16, u16), Vec<u8>)>, WireError> {
    let mut header = [0u8; 7];
    match s.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(io(e)),
    }
    if header.starts_with(b"AMQP") {
        return Err(protocol(
            "amqp 0-9-1",
            "the broker asked for another protocol version",
        ));
    }
    let size = u32::from_be_bytes([header[3], header[4], header[5], header[6]]) as usize;
    if header[0] != FRAME_METHOD || !(4..=131_072).contains(&size) {
        return Err(protocol(
            "amqp 0-9-1",
            format!("a frame of type {} and {size} bytes", header[0]),
        ));
    }
    let mut body = vec![0u8; size + 1];
    s.read_exact(&mut body).await.map_err(io)?;
    if body[size] != FRAME_END {
        return Err(protocol("amqp 0-9-1", "a frame without its end marker"));
    }
    let id = (
        u16::from_be_bytes([body[0], body[1]]),
        u16::from_be_bytes([body[2], body[3]]),
    );
    body.truncate(size);
    Ok(Some((id, body.split_off(4))))
}

/// Connection.Start-Ok with an empty client-properties table, PLAIN `\0user\0password`.
fn start_ok(user: &str, password: &str) -> Vec<u8> {
    let response = format!("\0{user}\0{password}");
    let mut args = Vec::new();
    args.extend_from_slice(&START_OK.0.to_be_bytes());
    args.extend_from_slice(&START_OK.1.to_be_bytes());
    args.extend_from_slice(&0u32.to_be_bytes());
    args.push(5);
    args.extend_from_slice(b"PLAIN");
    args.extend_from_slice(&(response.len() as u32).to_be_bytes());
    args.extend_from_slice(response.as_bytes());
    args.push(5);
    args.extend_from_slice(b"en_US");
    let mut frame = vec![FRAME_METHOD, 0, 0];
    frame.extend_from_slice(&(args.len() as u32).to_be_bytes());
    frame.extend_from_slice(&args);
    frame.push(FRAME_END);
    frame
}

/// Connection.Close's reply code and text.
fn close_reason(args: &[u8]) -> String {
    let code = args.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
    let text = args.get(2).and_then(|&n| args.get(3..3 + n as usize));
    match (code, text) {
        (Some(code), Some(text)) => format!("{code} {}", String::from_utf8_lossy(text)),
        _ => "connection.close".into(),
    }
}

/// Logs in as `user` with PLAIN. An error means no AMQP 0-9-1 broker answered (so a refusal
/// cannot be mistaken for a dead broker).
pub async fn amqp_login<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    user: &str,
    password: &str,
) -> Result<AmqpLogin, WireError> {
    s.write_all(b"AMQP\x00\x00\x09\x01").await.map_err(io)?;
    match method_frame(s).await? {
        Some((START, _)) => {}
        Some((id, _)) => return Err(protocol("amqp 0-9-1", format!("method {id:?} first"))),
        None => return Err(WireError::Io("the connection closed".into())),
    }
    s.write_all(&start_ok(user, password)).await.map_err(io)?;
    // RabbitMQ drops the connection on a failed login unless the client asked for a close.
    let reply = match method_frame(s).await {
        Ok(r) => r,
        Err(WireError::Io(e)) => return Ok(AmqpLogin::Refused(format!("connection lost: {e}"))),
        Err(e) => return Err(e),
    };
    Ok(match reply {
        Some((TUNE, _)) => AmqpLogin::Accepted,
        Some((CLOSE, args)) => AmqpLogin::Refused(close_reason(&args)),
        Some((id, _)) => {
            return Err(protocol(
                "amqp 0-9-1",
                format!("method {id:?} after start-ok"),
            ));
        }
        None => AmqpLogin::Refused("connection dropped".into()),
    })
}

/// Sends `stats` and returns the STAT lines' (name, value) pairs, up to `END`.
pub async fn memcached_stats<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
) -> Result<Vec<(String, String)>, WireError> {
    s.write_all(b"stats\r\n").await.map_err(io)?;
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    while !text.ends_with(b"END\r\n") {
        let n = s.read(&mut buf).await.map_err(io)?;
        if n == 0 {
            return Err(WireError::Io("the connection closed before END".into()));
        }
        text.extend_from_slice(&buf[..n]);
        if text.len() > 1 << 20 {
            return Err(protocol("memcached", "no END within 1 MiB"));
        }
    }
    let text = String::from_utf8_lossy(&text);
    let mut stats = Vec::new();
    for line in text.lines().filter(|l| *l != "END") {
        let mut words = line.splitn(3, ' ');
        match (words.next(), words.next(), words.next()) {
            (Some("STAT"), Some(name), Some(value)) => stats.push((name.into(), value.into())),
            _ => return Err(protocol("memcached", format!("the line {line:?}"))),
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    /// Runs `client` against a peer that first reads `expect` bytes (checked when `Some`),
    /// then writes `reply`, closes its sending side and reads whatever else comes.
    async fn against<T>(
        expect: Option<Vec<u8>>,
        reply: Vec<u8>,
        client: impl AsyncFnOnce(&mut tokio::io::DuplexStream) -> T,
    ) -> T {
        let (mut ours, mut theirs) = duplex(1 << 16);
        let peer = tokio::spawn(async move {
            if let Some(expect) = expect {
                let mut got = vec![0u8; expect.len()];
                theirs.read_exact(&mut got).await.unwrap();
                assert_eq!(got, expect);
            }
            theirs.write_all(&reply).await.unwrap();
            theirs.shutdown().await.unwrap();
            let _ = theirs.read_to_end(&mut Vec::new()).await;
        });
        let out = client(&mut ours).await;
        drop(ours);
        peer.await.unwrap();
        out
    }

    fn packet(payload: &[u8]) -> Vec<u8> {
        let mut p = (payload.len() as u32).to_le_bytes()[..3].to_vec();
        p.push(0);
        p.extend_from_slice(payload);
        p
    }

    #[tokio::test]
    async fn a_mysql_greeting_and_a_refused_host_are_both_the_server_answering() {
        let greeting = packet(b"\x0a10.1.20-MariaDB\0\x08\0\0\0abcdefgh\0");
        let hello = against(None, greeting, async |s| mysql_hello(s).await).await;
        assert_eq!(
            hello,
            Ok(MysqlHello::Greeting {
                version: "10.1.20-MariaDB".into()
            })
        );
        let refused = packet(b"\xff\x6a\x04Host '10.0.0.31' is not allowed to connect");
        let hello = against(None, refused, async |s| mysql_hello(s).await).await;
        assert_eq!(
            hello,
            Ok(MysqlHello::Refused {
                code: 1130,
                message: "Host '10.0.0.31' is not allowed to connect".into()
            })
        );
        let http = b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec();
        assert!(matches!(
            against(None, http, async |s| mysql_hello(s).await).await,
            Err(WireError::Protocol { .. })
        ));
        let silent = against(None, Vec::new(), async |s| mysql_hello(s).await).await;
        assert_eq!(silent, Err(WireError::Io("the connection closed".into())));
    }

    fn method(id: (u16, u16), args: &[u8]) -> Vec<u8> {
        let mut f = vec![FRAME_METHOD, 0, 0];
        f.extend_from_slice(&(args.len() as u32 + 4).to_be_bytes());
        f.extend_from_slice(&id.0.to_be_bytes());
        f.extend_from_slice(&id.1.to_be_bytes());
        f.extend_from_slice(args);
        f.push(FRAME_END);
        f
    }

    /// What a broker sends for a login: Connection.Start, then `after`.
    fn broker(after: &[u8]) -> Vec<u8> {
        let mut reply = method(START, b"\x00\x09\0\0\0\0\0\0\0\x05PLAIN\0\0\0\x05en_US");
        reply.extend_from_slice(after);
        reply
    }

    #[tokio::test]
    async fn an_amqp_login_is_accepted_on_tune_and_refused_on_close_or_a_drop() {
        let tune = method(TUNE, &[0, 0, 0, 2, 0, 0, 0, 0]);
        let login = async |s: &mut tokio::io::DuplexStream| amqp_login(s, "openstack", "pw").await;
        assert_eq!(
            against(Some(b"AMQP\x00\x00\x09\x01".to_vec()), broker(&tune), login).await,
            Ok(AmqpLogin::Accepted)
        );
        let close = method(CLOSE, b"\x01\x93\x0eACCESS_REFUSED\0\x0a\0\x0b");
        assert_eq!(
            against(None, broker(&close), login).await,
            Ok(AmqpLogin::Refused("403 ACCESS_REFUSED".into()))
        );
        assert_eq!(
            against(None, broker(&[]), login).await,
            Ok(AmqpLogin::Refused("connection dropped".into()))
        );
    }

    #[tokio::test]
    async fn no_broker_is_an_error_not_a_refusal() {
        let login = async |s: &mut tokio::io::DuplexStream| amqp_login(s, "openstack", "pw").await;
        assert!(matches!(
            against(None, Vec::new(), login).await,
            Err(WireError::Io(_))
        ));
        assert!(matches!(
            against(None, b"AMQP\x00\x00\x09\x00".to_vec(), login).await,
            Err(WireError::Protocol { .. })
        ));
        assert!(matches!(
            against(None, b"SSH-2.0-OpenSSH_9.2\r\n".to_vec(), login).await,
            Err(WireError::Protocol { .. })
        ));
    }

    #[test]
    fn start_ok_carries_plain_credentials_in_one_method_frame() {
        let f = start_ok("openstack", "secret");
        assert_eq!(&f[..3], &[FRAME_METHOD, 0, 0]);
        let size = u32::from_be_bytes([f[3], f[4], f[5], f[6]]) as usize;
        assert_eq!(f.len(), 7 + size + 1);
        assert_eq!(*f.last().unwrap(), FRAME_END);
        assert_eq!(&f[7..11], &[0, 10, 0, 11]);
        assert_eq!(
            &f[11..f.len() - 1],
            b"\0\0\0\0\x05PLAIN\0\0\0\x11\0openstack\0secret\x05en_US"
        );
    }

    #[tokio::test]
    async fn memcached_stats_are_read_up_to_end() {
        let reply = b"STAT pid 812\r\nSTAT uptime 41\r\nSTAT version 1.6.18\r\nEND\r\n".to_vec();
        let stats = against(Some(b"stats\r\n".to_vec()), reply, async |s| {
            memcached_stats(s).await
        })
        .await
        .unwrap();
        assert_eq!(stats[0], ("pid".into(), "812".into()));
        assert_eq!(stats.len(), 3);
        let error = against(None, b"ERROR\r\nEND\r\n".to_vec(), async |s| {
            memcached_stats(s).await
        })
        .await;
        assert!(
            matches!(error, Err(WireError::Protocol { .. })),
            "{error:?}"
        );
        let cut = against(None, b"STAT pid 1\r\n".to_vec(), async |s| {
            memcached_stats(s).await
        })
        .await;
        assert!(matches!(cut, Err(WireError::Io(_))), "{cut:?}");
    }
}

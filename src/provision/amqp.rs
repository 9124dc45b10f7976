//! A user's rights on a RabbitMQ vhost, proven over AMQP 0-9-1 by `lab` itself (over a TCP
//! connection the checking node opens, like the rest of [`super::wire`]): the login, the
//! vhost opened, then each right `rabbitmqctl set_permissions` grants used once: configure
//! (`queue.declare` of an exclusive, auto-deleted queue), write (`basic.publish` to the
//! default exchange, confirmed), read (`basic.get` of that message). The broker refuses a
//! right by closing the channel (403), which names what it refused. Nothing is left behind:
//! the queue goes with the connection, the message with the `get`.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::wire::WireError;

/// One right of an AMQP user on a vhost, as a conversation proved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Right {
    /// The broker allowed it: what proved it.
    Allowed(String),
    /// The broker refused it: its reason.
    Refused(String),
    /// Not proven either way, and why.
    Unproven(String),
}

/// What an AMQP session proved of a user's access to a vhost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmqpAccess {
    /// The login itself was refused: why.
    LoginRefused(String),
    /// Logged in, but the vhost was refused (a user with no permissions on it): why.
    VhostRefused(String),
    /// The vhost opened: each right.
    Opened {
        configure: Right,
        write: Right,
        read: Right,
    },
}

const METHOD: u8 = 1;
const HEADER: u8 = 2;
const BODY: u8 = 3;
const HEARTBEAT: u8 = 8;
const END: u8 = 0xce;

type Id = (u16, u16);
const START: Id = (10, 10);
const START_OK: Id = (10, 11);
const TUNE: Id = (10, 30);
const TUNE_OK: Id = (10, 31);
const OPEN: Id = (10, 40);
const OPEN_OK: Id = (10, 41);
const CLOSE: Id = (10, 50);
const CLOSE_OK: Id = (10, 51);
const CHANNEL_OPEN: Id = (20, 10);
const CHANNEL_OPEN_OK: Id = (20, 11);
const CHANNEL_CLOSE: Id = (20, 40);
const CHANNEL_CLOSE_OK: Id = (20, 41);
const DECLARE: Id = (50, 10);
const DECLARE_OK: Id = (50, 11);
const PUBLISH: Id = (60, 40);
const GET: Id = (60, 70);
const GET_OK: Id = (60, 71);
const GET_EMPTY: Id = (60, 72);
const ACK: Id = (60, 80);
const NACK: Id = (60, 120);
const SELECT: Id = (85, 10);
const SELECT_OK: Id = (85, 11);

/// The queue name tried when no queue could be declared: RabbitMQ checks the right before
/// the queue's existence, so 404 proves the right.
const ABSENT: &str = "lab-verify-absent";

fn io(e: std::io::Error) -> WireError {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => WireError::Io("the connection closed".into()),
        _ => WireError::Io(e.to_string()),
    }
}

/// The broker closed the whole connection in the middle of a right's proof.
fn closed(why: &str) -> WireError {
    WireError::Io(format!("the broker closed the connection: {why}"))
}

fn protocol(what: impl Into<String>) -> WireError {
    WireError::Protocol {
        protocol: "amqp 0-9-1",
        what: what.into(),
    }
}

/// A method's arguments as they are built.
#[derive(Default)]
struct Args(Vec<u8>);

impl Args {
    fn u8(mut self, v: u8) -> Args {
        self.0.push(v);
        self
    }
    fn u16(mut self, v: u16) -> Args {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u32(mut self, v: u32) -> Args {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Args {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn short(mut self, s: &str) -> Args {
        let len = u8::try_from(s.len()).expect("short strings here are short");
        self.0.push(len);
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    fn long(self, s: &str) -> Args {
        let len = u32::try_from(s.len()).expect("long strings here are short");
        let mut a = self.u32(len);
        a.0.extend_from_slice(s.as_bytes());
        a
    }
}

/// A frame's bytes.
fn frame(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![kind];
    f.extend_from_slice(&channel.to_be_bytes());
    let len = u32::try_from(payload.len()).expect("small frames");
    f.extend_from_slice(&len.to_be_bytes());
    f.extend_from_slice(payload);
    f.push(END);
    f
}

/// A method frame's bytes.
fn method(channel: u16, id: Id, args: Args) -> Vec<u8> {
    let mut payload = Args::default().u16(id.0).u16(id.1).0;
    payload.extend_from_slice(&args.0);
    frame(METHOD, channel, &payload)
}

/// A reader over a method's arguments.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], WireError> {
        if self.0.len() < n {
            return Err(protocol("arguments cut short"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn short(&mut self) -> Result<String, WireError> {
        let n = self.take(1)?[0] as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
}

/// A close method's `<code> <text>`.
fn reason(args: &[u8]) -> String {
    let mut c = Cursor(args);
    match (c.u16(), c.short()) {
        (Ok(code), Ok(text)) => format!("{code} {text}"),
        _ => "closed".into(),
    }
}

/// What came on a channel: a method, or the connection closed by the broker.
enum Got {
    Method(Id, Vec<u8>),
    ConnectionClosed(String),
}

/// One AMQP connection being spoken.
struct Session<'a, S> {
    s: &'a mut S,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<'_, S> {
    async fn send(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        self.s.write_all(bytes).await.map_err(io)
    }

    /// The next frame that is not a heartbeat: (type, channel, payload).
    async fn frame(&mut self) -> Result<(u8, u16, Vec<u8>), WireError> {
        loop {
            let mut header = [0u8; 7];
            self.s.read_exact(&mut header).await.map_err(io)?;
            if header.starts_with(b"AMQP") {
                return Err(protocol("the broker asked for another protocol version"));
            }
            let channel = u16::from_be_bytes([header[1], header[2]]);
            let size = u32::from_be_bytes([header[3], header[4], header[5], header[6]]) as usize;
            if size > 1 << 20 {
                return Err(protocol(format!("a frame of {size} bytes")));
            }
            let mut body = vec![0u8; size + 1];
            self.s.read_exact(&mut body).await.map_err(io)?;
            if body[size] != END {
                return Err(protocol("a frame without its end marker"));
            }
            body.truncate(size);
            if header[0] != HEARTBEAT {
                return Ok((header[0], channel, body));
            }
        }
    }

    /// The next method on `channel` (a connection.close from the broker ends the wait).
    async fn method(&mut self, channel: u16) -> Result<Got, WireError> {
        loop {
            let (kind, ch, payload) = self.frame().await?;
            if kind != METHOD || payload.len() < 4 {
                if ch == channel {
                    return Err(protocol(format!("a frame of type {kind} for a method")));
                }
                continue;
            }
            let id = (
                u16::from_be_bytes([payload[0], payload[1]]),
                u16::from_be_bytes([payload[2], payload[3]]),
            );
            let args = payload[4..].to_vec();
            if ch == 0 && id == CLOSE {
                self.send(&method(0, CLOSE_OK, Args::default())).await?;
                return Ok(Got::ConnectionClosed(reason(&args)));
            }
            if ch == channel {
                return Ok(Got::Method(id, args));
            }
        }
    }

    /// The next method on `channel`, which must be `want`, or the channel's close reason.
    async fn expect(
        &mut self,
        channel: u16,
        want: Id,
    ) -> Result<Result<Vec<u8>, String>, WireError> {
        match self.method(channel).await? {
            Got::Method(id, args) if id == want => Ok(Ok(args)),
            Got::Method(CHANNEL_CLOSE, args) => {
                self.send(&method(channel, CHANNEL_CLOSE_OK, Args::default()))
                    .await?;
                Ok(Err(reason(&args)))
            }
            Got::Method(id, _) => Err(protocol(format!("method {id:?} instead of {want:?}"))),
            Got::ConnectionClosed(why) => Err(closed(&why)),
        }
    }

    async fn open_channel(&mut self, channel: u16) -> Result<(), WireError> {
        self.send(&method(channel, CHANNEL_OPEN, Args::default().short("")))
            .await?;
        match self.expect(channel, CHANNEL_OPEN_OK).await? {
            Ok(_) => Ok(()),
            Err(why) => Err(protocol(format!("channel {channel} refused: {why}"))),
        }
    }
}

/// Connection.Start-Ok: no client properties, PLAIN `\0user\0password`.
fn start_ok(user: &str, password: &str) -> Vec<u8> {
    let args = Args::default()
        .u32(0)
        .short("PLAIN")
        .long(&format!("\0{user}\0{password}"))
        .short("en_US");
    method(0, START_OK, args)
}

/// Logs in as `user`, opens `vhost`, and proves each right `set_permissions` grants. An
/// error means no AMQP broker answered as one should.
pub async fn amqp_access<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    user: &str,
    password: &str,
    vhost: &str,
) -> Result<AmqpAccess, WireError> {
    let mut session = Session { s };
    session.send(b"AMQP\x00\x00\x09\x01").await?;
    match session.method(0).await? {
        Got::Method(START, _) => {}
        Got::Method(id, _) => return Err(protocol(format!("method {id:?} first"))),
        Got::ConnectionClosed(why) => return Err(protocol(format!("closed at once: {why}"))),
    }
    session.send(&start_ok(user, password)).await?;
    // RabbitMQ drops the connection on a failed login unless the client asked for a close.
    let tune = match session.method(0).await {
        Ok(Got::Method(TUNE, args)) => args,
        Ok(Got::ConnectionClosed(why)) => return Ok(AmqpAccess::LoginRefused(why)),
        Err(WireError::Io(e)) => {
            return Ok(AmqpAccess::LoginRefused(format!("connection lost: {e}")));
        }
        Ok(Got::Method(id, _)) => return Err(protocol(format!("method {id:?} after start-ok"))),
        Err(e) => return Err(e),
    };
    let mut t = Cursor(&tune);
    let (channels, frame_max) = (t.u16()?, t.u32()?);
    let tune_ok = Args::default().u16(channels).u32(frame_max).u16(0);
    session.send(&method(0, TUNE_OK, tune_ok)).await?;
    session
        .send(&method(
            0,
            OPEN,
            Args::default().short(vhost).short("").u8(0),
        ))
        .await?;
    match session.method(0).await? {
        Got::Method(OPEN_OK, _) => {}
        Got::ConnectionClosed(why) => return Ok(AmqpAccess::VhostRefused(why)),
        Got::Method(id, _) => return Err(protocol(format!("method {id:?} after open"))),
    }
    let (configure, queue) = configure(&mut session).await?;
    let marker = format!("lab verify {}", std::process::id());
    let write = write(&mut session, queue.as_deref(), &marker).await?;
    let read = read(&mut session, queue.as_deref(), &marker, &write).await?;
    // Best effort: the broker may drop the connection rather than answer.
    let bye = Args::default().u16(200).short("bye").u16(0).u16(0);
    if session.send(&method(0, CLOSE, bye)).await.is_ok() {
        let _ = session.method(0).await;
    }
    Ok(AmqpAccess::Opened {
        configure,
        write,
        read,
    })
}

/// Channel 1: an exclusive, auto-deleted, server-named queue declared.
async fn configure<S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut Session<'_, S>,
) -> Result<(Right, Option<String>), WireError> {
    session.open_channel(1).await?;
    // ticket, queue "", bits: exclusive (2) and auto-delete (3), no arguments.
    let declare = Args::default().u16(0).short("").u8(0b0000_1100).u32(0);
    session.send(&method(1, DECLARE, declare)).await?;
    Ok(match session.expect(1, DECLARE_OK).await? {
        Ok(args) => {
            let queue = Cursor(&args).short()?;
            let how = format!("queue.declare of {queue}: declare-ok");
            (Right::Allowed(how), Some(queue))
        }
        Err(why) => (Right::Refused(why), None),
    })
}

/// Channel 2, in confirm mode: the marker published to the default exchange, routed to
/// `queue` (or to no queue).
async fn write<S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut Session<'_, S>,
    queue: Option<&str>,
    marker: &str,
) -> Result<Right, WireError> {
    session.open_channel(2).await?;
    session
        .send(&method(2, SELECT, Args::default().u8(0)))
        .await?;
    if let Err(why) = session.expect(2, SELECT_OK).await? {
        return Ok(Right::Unproven(format!("confirm.select refused: {why}")));
    }
    let key = queue.unwrap_or(ABSENT);
    let publish = Args::default().u16(0).short("").short(key).u8(0);
    let header = Args::default()
        .u16(60)
        .u16(0)
        .u64(marker.len() as u64)
        .u16(0);
    let mut bytes = method(2, PUBLISH, publish);
    bytes.extend(frame(HEADER, 2, &header.0));
    bytes.extend(frame(BODY, 2, marker.as_bytes()));
    session.send(&bytes).await?;
    Ok(match session.method(2).await? {
        Got::Method(ACK, _) => Right::Allowed(format!(
            "basic.publish to the default exchange, key {key}: basic.ack"
        )),
        Got::Method(NACK, _) => Right::Unproven("the broker nacked the message".into()),
        Got::Method(CHANNEL_CLOSE, args) => {
            session
                .send(&method(2, CHANNEL_CLOSE_OK, Args::default()))
                .await?;
            Right::Refused(reason(&args))
        }
        Got::Method(id, _) => return Err(protocol(format!("method {id:?} after publish"))),
        Got::ConnectionClosed(why) => return Err(closed(&why)),
    })
}

/// Channel 3: the message got back from `queue` (or an absent queue asked for).
async fn read<S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut Session<'_, S>,
    queue: Option<&str>,
    marker: &str,
    written: &Right,
) -> Result<Right, WireError> {
    session.open_channel(3).await?;
    let name = queue.unwrap_or(ABSENT);
    session
        .send(&method(3, GET, Args::default().u16(0).short(name).u8(1)))
        .await?;
    Ok(match session.method(3).await? {
        Got::Method(GET_OK, _) => {
            let body = content(session).await?;
            if body == marker.as_bytes() {
                Right::Allowed(format!("basic.get from {name}: the published message"))
            } else {
                Right::Unproven(format!("basic.get from {name}: another message"))
            }
        }
        // The right is checked before the queue is read: an empty answer is a granted one.
        Got::Method(GET_EMPTY, _) => Right::Allowed(match written {
            Right::Allowed(_) => format!(
                "basic.get from {name}: get-empty (allowed; the published message did not come back)"
            ),
            _ => format!("basic.get from {name}: get-empty (allowed; nothing was published)"),
        }),
        Got::Method(CHANNEL_CLOSE, args) => {
            session
                .send(&method(3, CHANNEL_CLOSE_OK, Args::default()))
                .await?;
            let why = reason(&args);
            if queue.is_none() && why.starts_with("404") {
                Right::Allowed(format!(
                    "basic.get of an absent queue: {why} (the read right is checked first)"
                ))
            } else {
                Right::Refused(why)
            }
        }
        Got::Method(id, _) => return Err(protocol(format!("method {id:?} after get"))),
        Got::ConnectionClosed(why) => return Err(closed(&why)),
    })
}

/// A message's content after its method: the header frame, then body frames up to its size.
async fn content<S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut Session<'_, S>,
) -> Result<Vec<u8>, WireError> {
    let (kind, _, header) = session.frame().await?;
    if kind != HEADER || header.len() < 12 {
        return Err(protocol("no content header after get-ok"));
    }
    let size = u64::from_be_bytes(header[4..12].try_into().expect("8 bytes"));
    let mut body = Vec::new();
    while (body.len() as u64) < size {
        let (kind, _, part) = session.frame().await?;
        if kind != BODY {
            return Err(protocol("a content body cut short"));
        }
        body.extend(part);
    }
    Ok(body)
}

/// A broker's side of a rights session, scripted: frames built as RabbitMQ sends them, for
/// tests of code that holds such a session (this module's, the provisioning engine's).
#[doc(hidden)]
pub mod broker_script {
    use super::*;

    pub fn close(channel: u16, id: Id, code: u16, text: &str, on: Id) -> Vec<u8> {
        method(
            channel,
            id,
            Args::default().u16(code).short(text).u16(on.0).u16(on.1),
        )
    }

    /// Connection.Start: AMQP 0-9, no properties, PLAIN, en_US.
    pub fn start() -> Vec<u8> {
        let args = Args::default()
            .u8(0)
            .u8(9)
            .u32(0)
            .long("PLAIN")
            .long("en_US");
        method(0, START, args)
    }

    /// Connection.Tune: the broker's limits.
    pub fn tune() -> Vec<u8> {
        method(0, TUNE, Args::default().u16(2047).u32(131_072).u16(60))
    }

    /// The broker's side up to the vhost opened.
    pub fn opened() -> Vec<u8> {
        let mut b = start();
        b.extend(tune());
        b.extend(method(0, OPEN_OK, Args::default().short("")));
        b
    }

    /// The broker's side up to `queue` declared and channel 2 in confirm mode.
    pub fn declared(queue: &str) -> Vec<u8> {
        let mut b = opened();
        b.extend(channel_ok(1));
        b.extend(method(
            1,
            DECLARE_OK,
            Args::default().short(queue).u32(0).u32(0),
        ));
        b.extend(channel_ok(2));
        b.extend(method(2, SELECT_OK, Args::default()));
        b
    }

    pub fn channel_ok(ch: u16) -> Vec<u8> {
        method(ch, CHANNEL_OPEN_OK, Args::default().long(""))
    }

    pub fn marker() -> String {
        format!("lab verify {}", std::process::id())
    }

    pub fn got_back(body: &str) -> Vec<u8> {
        let mut b = method(
            3,
            GET_OK,
            Args::default().u64(1).u8(0).short("").short("q").u32(0),
        );
        b.extend(frame(
            HEADER,
            3,
            &Args::default()
                .u16(60)
                .u16(0)
                .u64(body.len() as u64)
                .u16(0)
                .0,
        ));
        b.extend(frame(BODY, 3, body.as_bytes()));
        b
    }

    /// The whole side of a broker that grants `openstack` every right on `/`: the queue
    /// `amq.gen-X` declared, the marker confirmed and got back, the connection closed.
    pub fn granting() -> Vec<u8> {
        let mut b = declared("amq.gen-X");
        b.extend(method(2, ACK, Args::default().u64(1).u8(0)));
        b.extend(channel_ok(3));
        b.extend(got_back(&marker()));
        b.extend(method(0, CLOSE_OK, Args::default()));
        b
    }
}

#[cfg(test)]
mod tests {
    use super::broker_script::*;
    use super::*;

    /// A scripted broker: reads what the client sends while writing `script`, then
    /// closes; returns what the client got to and what it sent.
    async fn against(script: Vec<u8>) -> (Result<AmqpAccess, WireError>, Vec<u8>) {
        let (mut client, mut broker) = tokio::io::duplex(1 << 16);
        let talk = tokio::spawn(async move {
            broker.write_all(&script).await.unwrap();
            let mut sent = Vec::new();
            let _ = tokio::time::timeout(
                std::time::Duration::from_millis(300),
                broker.read_to_end(&mut sent),
            )
            .await;
            sent
        });
        let r = amqp_access(&mut client, "openstack", "pw", "/").await;
        drop(client);
        (r, talk.await.unwrap())
    }

    #[tokio::test]
    async fn all_three_rights_are_proven_and_the_bytes_are_the_protocols() {
        let mut b = declared("amq.gen-X");
        b.extend(frame(HEARTBEAT, 0, &[]));
        b.extend(method(2, ACK, Args::default().u64(1).u8(0)));
        b.extend(channel_ok(3));
        b.extend(got_back(&marker()));
        b.extend(method(0, CLOSE_OK, Args::default()));
        let (r, sent) = against(b).await;
        let Ok(AmqpAccess::Opened {
            configure,
            write,
            read,
        }) = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(
            configure,
            Right::Allowed("queue.declare of amq.gen-X: declare-ok".into())
        );
        assert!(
            matches!(write, Right::Allowed(ref s) if s.contains("key amq.gen-X: basic.ack")),
            "{write:?}"
        );
        assert!(matches!(read, Right::Allowed(_)), "{read:?}");
        let contains = |needle: &[u8]| sent.windows(needle.len()).any(|w| w == needle);
        // queue.declare: ticket 0, name "", exclusive + auto-delete, no arguments.
        assert!(contains(&[
            1, 0, 1, 0, 0, 0, 12, 0, 50, 0, 10, 0, 0, 0, 0b1100, 0, 0, 0, 0, END
        ]));
        // basic.publish: ticket 0, exchange "", routing key amq.gen-X, no flags.
        let mut publish = vec![1, 0, 2, 0, 0, 0, 18, 0, 60, 0, 40, 0, 0, 0, 9];
        publish.extend(b"amq.gen-X");
        publish.extend([0, END]);
        assert!(contains(&publish));
        // basic.get: ticket 0, queue amq.gen-X, no-ack.
        let mut get = vec![1, 0, 3, 0, 0, 0, 17, 0, 60, 0, 70, 0, 0, 9];
        get.extend(b"amq.gen-X");
        get.extend([1, END]);
        assert!(contains(&get));
    }

    #[tokio::test]
    async fn a_user_without_permissions_is_refused_the_vhost() {
        let mut b = start();
        b.extend(tune());
        let why = "NOT_ALLOWED - access to vhost '/' refused for user 'openstack'";
        b.extend(close(0, CLOSE, 530, why, OPEN));
        let (r, _) = against(b).await;
        assert_eq!(r, Ok(AmqpAccess::VhostRefused(format!("530 {why}"))));
    }

    #[tokio::test]
    async fn a_refused_login_is_a_refusal_and_a_silent_peer_an_error() {
        let mut b = start();
        b.extend(close(
            0,
            CLOSE,
            403,
            "ACCESS_REFUSED - Login was refused",
            START_OK,
        ));
        let (r, _) = against(b).await;
        assert_eq!(
            r,
            Ok(AmqpAccess::LoginRefused(
                "403 ACCESS_REFUSED - Login was refused".into()
            ))
        );
        let start = start();
        let (r, _) = against(start).await;
        assert!(
            matches!(r, Ok(AmqpAccess::LoginRefused(ref s)) if s.starts_with("connection lost")),
            "{r:?}"
        );
        let (r, _) = against(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()).await;
        assert!(r.is_err(), "{r:?}");
    }

    #[tokio::test]
    async fn configure_refused_still_proves_write_and_read_without_a_queue() {
        let mut b = opened();
        b.extend(channel_ok(1));
        let refused = "ACCESS_REFUSED - access to queue 'amq.gen-Y' in vhost '/' refused for user 'openstack'";
        b.extend(close(1, CHANNEL_CLOSE, 403, refused, DECLARE));
        b.extend(channel_ok(2));
        b.extend(method(2, SELECT_OK, Args::default()));
        b.extend(method(2, ACK, Args::default().u64(1).u8(0)));
        b.extend(channel_ok(3));
        b.extend(close(
            3,
            CHANNEL_CLOSE,
            404,
            "NOT_FOUND - no queue 'lab-verify-absent' in vhost '/'",
            GET,
        ));
        let (r, _) = against(b).await;
        let Ok(AmqpAccess::Opened {
            configure,
            write,
            read,
        }) = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(configure, Right::Refused(format!("403 {refused}")));
        assert!(
            matches!(write, Right::Allowed(ref s) if s.contains("lab-verify-absent")),
            "{write:?}"
        );
        assert!(
            matches!(read, Right::Allowed(ref s) if s.contains("404")),
            "{read:?}"
        );
    }

    #[tokio::test]
    async fn write_and_read_refusals_are_the_brokers_channel_closes() {
        let mut b = declared("amq.gen-Z");
        let no_write = "ACCESS_REFUSED - access to exchange 'amq.default' in vhost '/' refused for user 'openstack'";
        b.extend(close(2, CHANNEL_CLOSE, 403, no_write, PUBLISH));
        b.extend(channel_ok(3));
        let no_read = "ACCESS_REFUSED - access to queue 'amq.gen-Z' in vhost '/' refused for user 'openstack'";
        b.extend(close(3, CHANNEL_CLOSE, 403, no_read, GET));
        let (r, _) = against(b).await;
        let Ok(AmqpAccess::Opened { write, read, .. }) = r else {
            panic!("{r:?}")
        };
        assert_eq!(write, Right::Refused(format!("403 {no_write}")));
        assert_eq!(read, Right::Refused(format!("403 {no_read}")));
        // Written, but the queue came back empty: the read right was granted all the same.
        let mut b = declared("amq.gen-Z");
        b.extend(method(2, ACK, Args::default().u64(1).u8(0)));
        b.extend(channel_ok(3));
        b.extend(method(3, GET_EMPTY, Args::default().short("")));
        let (r, _) = against(b).await;
        let Ok(AmqpAccess::Opened { read, .. }) = r else {
            panic!("{r:?}")
        };
        assert_eq!(
            read,
            Right::Allowed(
                "basic.get from amq.gen-Z: get-empty (allowed; the published message did not come back)"
                    .into()
            )
        );
    }

    #[tokio::test]
    async fn a_broker_that_drops_mid_way_is_an_error_not_a_verdict() {
        let mut b = opened();
        b.extend(channel_ok(1));
        let (r, _) = against(b).await;
        assert!(matches!(r, Err(WireError::Io(_))), "{r:?}");
    }
}

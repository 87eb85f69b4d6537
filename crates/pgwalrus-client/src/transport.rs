//! Byte streams: TCP and Unix-socket connection set-up, TCP keepalive and user timeout,
//! and the plain-or-TLS stream a connection runs over.
//!
//! [`Connection::handshake`](crate::Connection::handshake) accepts any
//! `AsyncRead + AsyncWrite + Unpin + Send + 'static` stream, so a tool with its own socket
//! (or a proxy, or an in-memory pipe in tests) can reuse the protocol code.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use std::os::fd::{AsRawFd, RawFd};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use tokio::net::{TcpStream, UnixStream};

use crate::config::{Host, HostSpec, Keepalives};

/// A stream a connection can run over.
pub trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncStream for T {}

/// The stream under a connection: the caller's (or our socket) as is, or wrapped in TLS.
pub(crate) enum Stream {
    Plain(Box<dyn AsyncStream>),
    Tls(Box<tokio_rustls::client::TlsStream<Box<dyn AsyncStream>>>),
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stream::Plain(_) => "Stream::Plain",
            Stream::Tls(_) => "Stream::Tls",
        })
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// One concrete place to connect to: an address of a TCP host, or a Unix socket file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(addr) => write!(f, "{addr}"),
            Endpoint::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The socket file of a server listening in `dir` on `port`: `<dir>/.s.PGSQL.<port>`.
pub(crate) fn unix_socket_path(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!(".s.PGSQL.{port}"))
}

/// How a host is named in messages: `name:port`, `[v6]:port`, or the socket path.
pub(crate) fn host_label(host: &HostSpec) -> String {
    match &host.host {
        Host::Unix(dir) => unix_socket_path(dir, host.port).display().to_string(),
        Host::Tcp(name) => match (host.hostaddr, name.is_empty()) {
            (Some(addr), true) => SocketAddr::new(addr, host.port).to_string(),
            _ if name.contains(':') => format!("[{name}]:{}", host.port),
            _ => format!("{name}:{}", host.port),
        },
    }
}

/// The label of one endpoint of `host`: the address, preceded by the host name when it
/// was resolved from one (`localhost (127.0.0.1:5432)`).
pub(crate) fn endpoint_label(host: &HostSpec, endpoint: &Endpoint) -> String {
    match (&host.host, endpoint) {
        (Host::Tcp(name), Endpoint::Tcp(addr))
            if !name.is_empty() && name.parse::<std::net::IpAddr>().is_err() =>
        {
            format!("{name} ({addr})")
        }
        _ => endpoint.to_string(),
    }
}

/// The endpoints of `host`, in order: `hostaddr` when set, else every resolved address,
/// else the Unix socket.
pub(crate) async fn resolve(host: &HostSpec) -> io::Result<Vec<Endpoint>> {
    if let Some(addr) = host.hostaddr {
        return Ok(vec![Endpoint::Tcp(SocketAddr::new(addr, host.port))]);
    }
    match &host.host {
        Host::Unix(dir) => Ok(vec![Endpoint::Unix(unix_socket_path(dir, host.port))]),
        Host::Tcp(name) => {
            let addrs: Vec<_> = tokio::net::lookup_host((name.as_str(), host.port))
                .await?
                .map(Endpoint::Tcp)
                .collect();
            if addrs.is_empty() {
                return Err(io::Error::new(io::ErrorKind::NotFound, "no addresses"));
            }
            Ok(addrs)
        }
    }
}

/// Opens a socket to `endpoint`, with TCP keepalive, `TCP_USER_TIMEOUT` and `TCP_NODELAY`
/// set as libpq does.
///
/// libpq sets the user timeout in the same chain as the keepalive options, so with
/// `keepalives=0` it is never set; the same here, so that a conninfo behaves as it does
/// with libpq. A Unix socket has neither.
pub(crate) async fn open(
    endpoint: &Endpoint,
    keepalives: &Keepalives,
    tcp_user_timeout: Option<Duration>,
) -> io::Result<(Box<dyn AsyncStream>, Option<RawFd>)> {
    match endpoint {
        Endpoint::Tcp(addr) => {
            let stream = TcpStream::connect(addr).await?;
            configure_tcp(&stream, keepalives, tcp_user_timeout)?;
            let fd = stream.as_raw_fd();
            Ok((Box::new(stream), Some(fd)))
        }
        Endpoint::Unix(path) => Ok((Box::new(UnixStream::connect(path).await?), None)),
    }
}

/// `SO_RCVLOWAT` on the TCP socket `fd` (see [`crate::Connection::set_receive_low_water`]).
/// Lowering it makes the kernel report waiting data at once (Linux signals readiness
/// when the mark changes), so a reader that lowers it after a pause is woken if enough
/// arrived meanwhile.
#[allow(unsafe_code)]
pub(crate) fn set_receive_low_water(fd: RawFd, bytes: u32) -> io::Result<()> {
    let value = libc::c_int::try_from(bytes.max(1)).unwrap_or(libc::c_int::MAX);
    // SAFETY: `fd` is the connection's own open socket (it lives as long as the
    // `Connection` that calls this); the option value is a `c_int` passed by pointer with
    // its exact size, as setsockopt(2) requires for SO_RCVLOWAT.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            std::ptr::from_ref(&value).cast(),
            libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(4),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The socket options of [`open`] on a connected TCP socket.
fn configure_tcp(
    stream: &TcpStream,
    keepalives: &Keepalives,
    tcp_user_timeout: Option<Duration>,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    if keepalives.enabled {
        let mut ka = TcpKeepalive::new();
        if let Some(idle) = keepalives.idle {
            ka = ka.with_time(idle);
        }
        if let Some(interval) = keepalives.interval {
            ka = ka.with_interval(interval);
        }
        if let Some(count) = keepalives.count {
            ka = ka.with_retries(count);
        }
        SockRef::from(stream).set_tcp_keepalive(&ka)?;
        if let Some(timeout) = tcp_user_timeout {
            set_user_timeout(stream, timeout)?;
        }
    }
    Ok(())
}

/// `TCP_USER_TIMEOUT`: unacknowledged data older than `timeout` ends the connection (zero:
/// the kernel's default). Where the option does not exist, nothing, as libpq.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_user_timeout(stream: &TcpStream, timeout: Duration) -> io::Result<()> {
    SockRef::from(stream).set_tcp_user_timeout((!timeout.is_zero()).then_some(timeout))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set_user_timeout(_stream: &TcpStream, _timeout: Duration) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::*;

    fn tcp(name: &str, hostaddr: Option<IpAddr>) -> HostSpec {
        HostSpec {
            host: Host::Tcp(name.into()),
            hostaddr,
            port: 5432,
        }
    }

    #[test]
    fn labels() {
        assert_eq!(host_label(&tcp("db.example", None)), "db.example:5432");
        assert_eq!(host_label(&tcp("::1", None)), "[::1]:5432");
        assert_eq!(
            host_label(&tcp("", Some(IpAddr::V4(Ipv4Addr::LOCALHOST)))),
            "127.0.0.1:5432"
        );
        let unix = HostSpec {
            host: Host::Unix("/tmp".into()),
            hostaddr: None,
            port: 5433,
        };
        assert_eq!(host_label(&unix), "/tmp/.s.PGSQL.5433");
        let ep = Endpoint::Tcp(SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 5432));
        assert_eq!(
            endpoint_label(&tcp("localhost", None), &ep),
            "localhost ([::1]:5432)"
        );
        let ep = Endpoint::Tcp(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5432));
        assert_eq!(
            endpoint_label(&tcp("127.0.0.1", None), &ep),
            "127.0.0.1:5432"
        );
    }

    /// The options reach the socket: read back with `getsockopt`.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[tokio::test]
    async fn tcp_user_timeout_is_set_only_with_keepalives_as_libpq() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let user_timeout = |stream: &TcpStream| SockRef::from(stream).tcp_user_timeout().unwrap();
        let on = Keepalives {
            idle: Some(Duration::from_secs(7)),
            ..Keepalives::default()
        };
        let off = Keepalives {
            enabled: false,
            ..Keepalives::default()
        };
        for (keepalives, timeout, expected) in [
            (&on, None, None),
            (
                &on,
                Some(Duration::from_millis(2500)),
                Some(Duration::from_millis(2500)),
            ),
            (&on, Some(Duration::ZERO), None),
            (&off, Some(Duration::from_millis(2500)), None),
        ] {
            let stream = TcpStream::connect(addr).await.unwrap();
            configure_tcp(&stream, keepalives, timeout).unwrap();
            assert_eq!(
                user_timeout(&stream),
                expected,
                "{keepalives:?} {timeout:?}"
            );
            let sock = SockRef::from(&stream);
            assert_eq!(sock.keepalive().unwrap(), keepalives.enabled);
            if keepalives.enabled {
                assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(7));
            }
            assert!(stream.nodelay().unwrap());
        }
    }

    #[tokio::test]
    async fn resolution_order() {
        let h = tcp("localhost", Some(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))));
        assert_eq!(
            resolve(&h).await.unwrap(),
            vec![Endpoint::Tcp("10.1.2.3:5432".parse().unwrap())]
        );
        let unix = HostSpec {
            host: Host::Unix("/run/pg".into()),
            hostaddr: None,
            port: 1,
        };
        assert_eq!(
            resolve(&unix).await.unwrap(),
            vec![Endpoint::Unix("/run/pg/.s.PGSQL.1".into())]
        );
        let v4 = resolve(&tcp("127.0.0.1", None)).await.unwrap();
        assert_eq!(v4, vec![Endpoint::Tcp("127.0.0.1:5432".parse().unwrap())]);
    }
}

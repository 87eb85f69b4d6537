//! The daemon's HTTP endpoint: `GET /status` (JSON), `GET /metrics` (Prometheus text
//! format), `GET /healthz`, `POST /reload` and `POST /servers/NAME/retry`; with a token
//! configured, every request but `/healthz` must carry `Authorization: Bearer TOKEN`. A deliberately
//! small HTTP/1.1 server: one request per connection, a bounded request head, a time limit,
//! no body read — enough for `pgwalrus status`, Prometheus and a load balancer's probe,
//! without a web framework in the tree. It listens on localhost unless configured otherwise.
//! It is also the client `pgwalrus status` uses ([`get`], [`post`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use super::report;
use super::supervisor::{Request, View};

/// Longest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// Time a client has to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves requests on `listener` until the process ends.
pub(crate) async fn serve(
    listener: TcpListener,
    view: View,
    requests: mpsc::Sender<Request>,
    token: Option<Arc<str>>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (view, requests, token) = (view.clone(), requests.clone(), token.clone());
        tokio::spawn(async move {
            if let Err(e) = handle(stream, &view, &requests, token.as_deref()).await {
                debug!("HTTP request failed: {e}");
            }
        });
    }
}

async fn handle(
    mut stream: TcpStream,
    view: &View,
    requests: &mpsc::Sender<Request>,
    token: Option<&str>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(READ_TIMEOUT, async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
    if !matches!(read, Ok(Ok(()))) {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&head);
    let mut words = text.lines().next().unwrap_or_default().split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or(path);
    let rows = || view.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let authorized = token.is_none_or(|token| {
        text.lines().skip(1).any(|line| {
            line.split_once(':').is_some_and(|(name, value)| {
                name.trim().eq_ignore_ascii_case("authorization")
                    && value.trim().strip_prefix("Bearer ") == Some(token)
            })
        })
    });
    let (code, kind, body) = match (method, path) {
        (_, p) if p != "/healthz" && !authorized => (
            401,
            "text/plain",
            "a bearer token is required (Authorization: Bearer …)\n".to_owned(),
        ),
        ("GET", "/status") => (200, "application/json", {
            let mut body = report::status_json(&rows()).to_string();
            body.push('\n');
            body
        }),
        ("GET", "/metrics") => (
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            report::metrics(&rows()),
        ),
        ("GET", "/healthz") => (200, "text/plain", "ok\n".to_owned()),
        ("POST", "/reload") => answer(requests, Request::Reload).await,
        ("POST", p) if p.starts_with("/servers/") && p.ends_with("/retry") => {
            let name = p["/servers/".len()..p.len() - "/retry".len()].to_owned();
            answer(requests, |reply| Request::Retry(name, reply)).await
        }
        ("GET" | "POST", _) => (404, "text/plain", "not found\n".to_owned()),
        _ => (405, "text/plain", "method not allowed\n".to_owned()),
    };
    let reason = match code {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Conflict",
    };
    let response = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

async fn answer(
    requests: &mpsc::Sender<Request>,
    make: impl FnOnce(oneshot::Sender<Result<String, String>>) -> Request,
) -> (u16, &'static str, String) {
    let (reply, answered) = oneshot::channel();
    if requests.send(make(reply)).await.is_err() {
        return (409, "text/plain", "the daemon is stopping\n".to_owned());
    }
    match answered.await {
        Ok(Ok(summary)) => (200, "text/plain", format!("{summary}\n")),
        Ok(Err(why)) => (409, "text/plain", format!("{why}\n")),
        Err(_) => (409, "text/plain", "the daemon is stopping\n".to_owned()),
    }
}

/// A response: status code and body.
#[derive(Debug)]
pub struct Response {
    /// The HTTP status code.
    pub code: u16,
    /// The body.
    pub body: String,
}

/// `GET path` from the daemon at `addr`.
///
/// # Errors
/// Connecting, sending or reading failed, or the answer is not HTTP.
pub async fn get(addr: &str, path: &str, token: Option<&str>) -> std::io::Result<Response> {
    request(addr, "GET", path, token).await
}

/// `POST path` (no body) to the daemon at `addr`.
///
/// # Errors
/// As [`get`].
pub async fn post(addr: &str, path: &str, token: Option<&str>) -> std::io::Result<Response> {
    request(addr, "POST", path, token).await
}

async fn request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> std::io::Result<Response> {
    let mut stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let authorization =
        token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{authorization}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("the answer is not HTTP"))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("the answer is not HTTP"))?;
    Ok(Response {
        code,
        body: body.to_owned(),
    })
}

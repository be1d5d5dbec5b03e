//! One client connection, as a browser holds it: one TCP connection with
//! keep-alive, one request at a time.
//!
//! The client is a few lines of HTTP/1.1 over a socket, parsed with
//! `httparse`, in the task that uses it. The generator shares the cores
//! with the server it measures, so its own cost per request is part of
//! every latency it reports: a general client (hyper's runs each
//! connection as a second task behind a channel) costs the server's
//! figures more than this does.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, bail};
use bytes::{Buf, Bytes, BytesMut};
use hyper::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Ports one source address can use towards one server address, roughly
/// (the ephemeral range less a margin).
pub const CONNECTIONS_PER_SOURCE: usize = 28_000;

/// The first loopback source address of this process, less 1: several
/// generators driving one deployment each take their own addresses
/// (`--first-source`), so their ports never collide.
static FIRST_SOURCE: std::sync::OnceLock<u8> = std::sync::OnceLock::new();

/// Makes this process's clients start at 127.0.0.(1 + `offset`); once,
/// before any connection.
pub fn set_first_source(offset: u8) {
    let _ = FIRST_SOURCE.set(offset);
}

/// The loopback source address for the `index`-th client: 127.0.0.1 for
/// the first 28,000, then 127.0.0.2, … so the ephemeral ports of one
/// address never run out.
pub fn source_for(index: usize) -> IpAddr {
    let n = (index / CONNECTIONS_PER_SOURCE) as u8;
    let first = FIRST_SOURCE.get().copied().unwrap_or(0);
    IpAddr::from([127, 0, 0, 1u8.saturating_add(first).saturating_add(n)])
}

/// Setup calls answered `503` and tried again (see [`Conn::json`]).
pub static RETRIED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Headers an answer may carry at most; natter sends about ten.
const MAX_HEADERS: usize = 32;
/// The largest answer head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// A keep-alive HTTP/1.1 connection.
pub struct Conn {
    stream: TcpStream,
    host: String,
    /// Bytes read and not yet consumed.
    input: BytesMut,
    /// The request being written, kept to reuse its allocation.
    output: Vec<u8>,
    /// The server said it closes the connection after its answer.
    closed: bool,
}

/// What the head of an answer says about its body.
struct Head {
    status: StatusCode,
    len: usize,
    body: Framing,
    close: bool,
    /// The values of the headers the caller asked for, in its order.
    captured: Vec<Option<String>>,
}

/// A request beyond natter's: extra headers to send, answer headers to keep.
/// nchan's long poll carries its cursor in `Last-Modified` and `Etag`.
#[derive(Default)]
pub struct Extra<'a> {
    pub send: &'a [(&'a str, &'a str)],
    pub keep: &'a [&'a str],
}

enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

impl Conn {
    /// Connects to `server` from `source`.
    pub async fn open(server: SocketAddr, source: IpAddr) -> anyhow::Result<Conn> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(source, 0))?;
        let stream = socket
            .connect(server)
            .await
            .with_context(|| format!("connect to {server} from {source}"))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            host: server.to_string(),
            input: BytesMut::new(),
            output: Vec::new(),
            closed: false,
        })
    }

    /// Sends one request and reads the whole answer. After an error the
    /// connection is out of step with the server and refuses further calls.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        json: Option<Vec<u8>>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let (status, _, body) = self
            .call_with(method, path, token, json, &Extra::default())
            .await?;
        Ok((status, body))
    }

    /// [`Conn::call`] with the extra headers of `extra`; also answers the
    /// values of the headers `extra.keep` names.
    pub async fn call_with(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        json: Option<Vec<u8>>,
        extra: &Extra<'_>,
    ) -> anyhow::Result<(StatusCode, Vec<Option<String>>, Bytes)> {
        if self.closed {
            bail!("the server closed this connection");
        }
        let answer = self.exchange(method, path, token, json, extra).await;
        self.closed |= answer.is_err();
        answer
    }

    async fn exchange(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        json: Option<Vec<u8>>,
        extra: &Extra<'_>,
    ) -> anyhow::Result<(StatusCode, Vec<Option<String>>, Bytes)> {
        self.write_request(&method, path, token, extra.send, json.as_deref());
        self.stream.write_all(&self.output).await?;
        let mut head = self.read_head(extra.keep).await?;
        // An interim answer (100 Continue, 103 Early Hints) precedes the real one.
        while head.status.is_informational() {
            self.input.advance(head.len);
            head = self.read_head(extra.keep).await?;
        }
        self.input.advance(head.len);
        let body = match head.body {
            Framing::Length(n) => self.read_exact(n).await?,
            Framing::Chunked => self.read_chunked().await?,
            Framing::UntilClose => {
                loop {
                    self.input.reserve(4096);
                    if self.stream.read_buf(&mut self.input).await? == 0 {
                        break;
                    }
                }
                self.closed = true;
                self.input.split().freeze()
            }
        };
        self.closed |= head.close;
        Ok((head.status, head.captured, body))
    }

    /// A JSON call that must succeed; returns the parsed answer. A `503`
    /// (an overloaded server or database says "try again shortly") is
    /// tried again after a second, up to five times, as natter's clients
    /// do; [`RETRIED`] counts those.
    pub async fn json(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let bytes = body.map(|b| serde_json::to_vec(&b)).transpose()?;
        let mut tries = 1;
        let (status, answer) = loop {
            let (status, answer) = self
                .call(method.clone(), path, token, bytes.clone())
                .await?;
            if status != StatusCode::SERVICE_UNAVAILABLE || tries == 5 {
                break (status, answer);
            }
            RETRIED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tries += 1;
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        };
        if !status.is_success() {
            bail!(
                "{method} {path}: {status} {}",
                String::from_utf8_lossy(&answer)
            );
        }
        if answer.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        Ok(serde_json::from_slice(&answer)?)
    }

    fn write_request(
        &mut self,
        method: &Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        json: Option<&[u8]>,
    ) {
        use std::io::Write;
        let out = &mut self.output;
        out.clear();
        let _ = write!(out, "{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        if let Some(token) = token {
            let _ = write!(out, "Authorization: Bearer {token}\r\n");
        }
        for (name, value) in headers {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        if let Some(json) = json {
            let _ = write!(
                out,
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                json.len()
            );
        } else if method == Method::POST {
            out.extend_from_slice(b"Content-Length: 0\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if let Some(json) = json {
            out.extend_from_slice(json);
        }
    }

    async fn read_head(&mut self, keep: &[&str]) -> anyhow::Result<Head> {
        loop {
            if let Some(head) = parse_head(&self.input, keep)? {
                return Ok(head);
            }
            if self.input.len() > MAX_HEAD {
                bail!("the answer's head is larger than {MAX_HEAD} bytes");
            }
            self.fill().await?;
        }
    }

    /// Reads more input; the connection ending here is an error.
    async fn fill(&mut self) -> anyhow::Result<()> {
        self.input.reserve(4096);
        if self.stream.read_buf(&mut self.input).await? == 0 {
            self.closed = true;
            bail!("the server closed the connection mid-answer");
        }
        Ok(())
    }

    async fn read_exact(&mut self, n: usize) -> anyhow::Result<Bytes> {
        while self.input.len() < n {
            self.fill().await?;
        }
        Ok(self.input.split_to(n).freeze())
    }

    async fn read_line(&mut self) -> anyhow::Result<Bytes> {
        loop {
            if let Some(end) = self.input.windows(2).position(|w| w == b"\r\n") {
                let line = self.input.split_to(end).freeze();
                self.input.advance(2);
                return Ok(line);
            }
            if self.input.len() > MAX_HEAD {
                bail!("a chunk-size line is longer than {MAX_HEAD} bytes");
            }
            self.fill().await?;
        }
    }

    async fn read_chunked(&mut self) -> anyhow::Result<Bytes> {
        let mut body = BytesMut::new();
        loop {
            let line = self.read_line().await?;
            let size = std::str::from_utf8(&line)?
                .split(';')
                .next()
                .unwrap_or_default()
                .trim();
            let size = usize::from_str_radix(size, 16).context("a chunk size")?;
            if size == 0 {
                // Trailers, if any, up to the empty line.
                while !self.read_line().await?.is_empty() {}
                return Ok(body.freeze());
            }
            body.extend_from_slice(&self.read_exact(size).await?);
            if !self.read_line().await?.is_empty() {
                bail!("a chunk is longer than its size says");
            }
        }
    }
}

/// The answer head at the start of `input`, if it is all there, with the
/// values of the headers `keep` names.
fn parse_head(input: &[u8], keep: &[&str]) -> anyhow::Result<Option<Head>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(len) = response.parse(input)? else {
        return Ok(None);
    };
    let status = StatusCode::from_u16(response.code.unwrap_or(0))?;
    let (mut length, mut chunked) = (None, false);
    let mut close = response.version == Some(0);
    let mut captured = vec![None; keep.len()];
    for header in response.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or_default();
        if let Some(i) = keep
            .iter()
            .position(|k| header.name.eq_ignore_ascii_case(k))
        {
            captured[i] = Some(value.to_owned());
        }
        let has_token = |token: &str| {
            value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        };
        if header.name.eq_ignore_ascii_case("content-length") {
            length = Some(value.trim().parse().context("content-length")?);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked |= has_token("chunked");
        } else if header.name.eq_ignore_ascii_case("connection") {
            close |= has_token("close");
        }
    }
    // With both, the chunked framing wins (RFC 9112, section 6.3).
    let body = if chunked {
        Some(Framing::Chunked)
    } else {
        length.map(Framing::Length)
    };
    let bodiless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let body = if bodiless {
        Framing::Length(0)
    } else {
        body.unwrap_or(Framing::UntilClose)
    };
    Ok(Some(Head {
        status,
        len,
        body,
        close,
        captured,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_read_only_once_complete() {
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Len", &[])
                .unwrap()
                .is_none()
        );
        let head = parse_head(
            b"HTTP/1.1 201 Created\r\ncontent-length: 12\r\n\r\n{\"ok\":true}x",
            &[],
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.status, StatusCode::CREATED);
        assert!(matches!(head.body, Framing::Length(12)));
        assert!(!head.close);
    }

    #[test]
    fn framing_follows_the_headers() {
        let chunked = parse_head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            &[],
        )
        .unwrap()
        .unwrap();
        assert!(matches!(chunked.body, Framing::Chunked));
        let closing = parse_head(
            b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n",
            &[],
        )
        .unwrap()
        .unwrap();
        assert!(closing.close);
        assert!(matches!(closing.body, Framing::UntilClose));
        let listed = parse_head(
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n",
            &[],
        )
        .unwrap()
        .unwrap();
        assert!(listed.close);
        let both = parse_head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n\r\n",
            &[],
        )
        .unwrap()
        .unwrap();
        assert!(matches!(both.body, Framing::Chunked));
        let empty = parse_head(b"HTTP/1.1 204 No Content\r\n\r\n", &[])
            .unwrap()
            .unwrap();
        assert!(matches!(empty.body, Framing::Length(0)));
    }

    #[test]
    fn asked_for_headers_are_kept_whatever_their_case() {
        let head = parse_head(
            b"HTTP/1.1 200 OK\r\nLast-Modified: Tue, 01 Dec 2026 19:00:00 GMT\r\netag: 3\r\nContent-Length: 0\r\n\r\n",
            &["etag", "last-modified", "x-absent"],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            head.captured,
            [
                Some("3".to_owned()),
                Some("Tue, 01 Dec 2026 19:00:00 GMT".to_owned()),
                None
            ]
        );
    }

    #[tokio::test]
    async fn chunked_and_interim_answers_are_read_whole_and_the_connection_kept() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            for answer in [
                &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n"[..],
                &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"[..],
            ] {
                let mut buf = [0u8; 1024];
                let n = socket.read(&mut buf).await.unwrap();
                seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                socket.write_all(answer).await.unwrap();
            }
            seen
        });
        let mut conn = Conn::open(addr, source_for(0)).await.unwrap();
        let (status, body) = conn.call(Method::GET, "/a", Some("t"), None).await.unwrap();
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"hello world"[..]));
        let (status, body) = conn
            .call(Method::POST, "/b", None, Some(b"{}".to_vec()))
            .await
            .unwrap();
        assert_eq!((status, &body[..]), (StatusCode::CREATED, &b"ok"[..]));
        let seen = server.await.unwrap();
        assert!(seen[0].starts_with("GET /a HTTP/1.1\r\n"));
        assert!(seen[0].contains("Authorization: Bearer t\r\n"));
        assert!(seen[1].ends_with("Content-Length: 2\r\n\r\n{}"));
    }
}

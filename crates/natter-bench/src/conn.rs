//! One client connection, as a browser holds it: one TCP connection with
//! keep-alive, one request at a time.

use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpSocket;

/// Ports one source address can use towards one server address, roughly
/// (the ephemeral range less a margin).
pub const CONNECTIONS_PER_SOURCE: usize = 28_000;

/// The loopback source address for the `index`-th client: 127.0.0.1 for
/// the first 28,000, then 127.0.0.2, … so the ephemeral ports of one
/// address never run out.
pub fn source_for(index: usize) -> IpAddr {
    let n = (index / CONNECTIONS_PER_SOURCE) as u8;
    IpAddr::from([127, 0, 0, 1 + n])
}

/// A keep-alive HTTP/1.1 connection.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
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
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn {
            sender,
            host: server.to_string(),
        })
    }

    /// Sends one request and reads the whole answer.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        json: Option<Vec<u8>>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, &self.host);
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        if json.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request.body(Full::new(Bytes::from(json.unwrap_or_default())))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// A JSON call that must succeed; returns the parsed answer.
    pub async fn json(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        let bytes = body.map(|b| serde_json::to_vec(&b)).transpose()?;
        let (status, answer) = self.call(method.clone(), path, token, bytes).await?;
        if !status.is_success() {
            anyhow::bail!(
                "{method} {path}: {status} {}",
                String::from_utf8_lossy(&answer)
            );
        }
        if answer.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        Ok(serde_json::from_slice(&answer)?)
    }
}

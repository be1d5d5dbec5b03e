//! A TCP proxy between a test and a real service (PostgreSQL, Redis)
//! that the test can freeze: the service seems to stop answering while
//! every connection stays open.

/// A TCP proxy to `upstream` whose traffic the test can stop without
/// closing anything, as a server that is stopped (SIGSTOP) or wedged
/// looks from the client: connections stay open, nothing answers.
/// Returns its address and the switch (`true` freezes).
pub async fn freezable_proxy(upstream: String) -> (String, tokio::sync::watch::Sender<bool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (frozen, _) = tokio::sync::watch::channel(false);
    let freeze = frozen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                continue;
            };
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::spawn(pass(client_read, server_write, freeze.subscribe()));
            tokio::spawn(pass(server_read, client_write, freeze.subscribe()));
        }
    });
    (address, frozen)
}

/// Copies `from` to `to`, holding what it read while `frozen` says so.
async fn pass(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while *frozen.borrow_and_update() {
            if frozen.changed().await.is_err() {
                return;
            }
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

//! A real natter server on a free port, and a small HTTP client for it.

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use natter::Config;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server running in this process on 127.0.0.1:<free port>, with its
/// own data folder.
pub struct TestServer {
    pub base: String,
    pub data: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// The configuration tests start from: short presence grace so presence
/// tests are quick, rate limits off (tests of the limits turn them on,
/// `limits.rs`), the rest as shipped.
pub fn test_config() -> Config {
    let mut config = Config::default();
    config.hub.presence_grace = Duration::from_millis(500);
    config.chat.limits = natter::chat::RateLimits::off();
    config
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let data = tempfile::tempdir().expect("temp dir");
        Self::start_in(data, adjust).await
    }

    /// Starts on an existing data folder (for restarts).
    pub async fn start_in(data: tempfile::TempDir, adjust: impl FnOnce(&mut Config)) -> TestServer {
        log_check::init();
        let mut config = test_config();
        config.data_dir = data.path().join("data");
        adjust(&mut config);
        for key in &config.chat.admin_keys.0 {
            log_check::secret(key);
        }
        if let Some(token) = &config.metrics_token {
            log_check::secret(token.as_str());
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(natter::serve(listener, config, async {
            let _ = stopped.await;
        }));
        TestServer {
            base,
            data,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops gracefully and hands back the data folder.
    pub async fn stop(mut self) -> tempfile::TempDir {
        self.stop.take().unwrap().send(()).ok();
        self.task.take().unwrap().await.unwrap().unwrap();
        let data = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.data, data)
    }

    pub fn client(&self) -> Client {
        Client::new(&self.base)
    }

    /// Registers `name` (password "password-1") and logs in.
    pub async fn user(&self, name: &str) -> Client {
        let mut c = self.client();
        c.register_and_login(name).await;
        c
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
    }
}

/// An API client holding one user's token.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
    pub user_id: i64,
}

/// A decoded response: status and JSON body (Null when empty).
pub type Reply = (StatusCode, Value);

impl Client {
    pub fn new(base: &str) -> Client {
        Self::build(base, reqwest::Client::builder())
    }

    /// A client whose connections come from `local` (any 127.x.y.z works
    /// on Linux), so tests can play several hosts.
    pub fn from_address(base: &str, local: &str) -> Client {
        let local: std::net::IpAddr = local.parse().unwrap();
        Self::build(base, reqwest::Client::builder().local_address(local))
    }

    fn build(base: &str, builder: reqwest::ClientBuilder) -> Client {
        Client {
            http: builder.timeout(Duration::from_secs(90)).build().unwrap(),
            base: base.to_owned(),
            token: None,
            user_id: 0,
        }
    }

    pub async fn register_and_login(&mut self, name: &str) {
        let (status, body) = self
            .post(
                "/api/v1/users",
                json!({"username": name, "password": "password-1"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "register {name}: {body}");
        self.login(name).await;
    }

    pub async fn login(&mut self, name: &str) -> Value {
        let (status, body) = self
            .post(
                "/api/v1/sessions",
                json!({"username": name, "password": "password-1"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "login {name}: {body}");
        log_check::secret("password-1");
        log_check::secret(body["token"].as_str().unwrap());
        self.token = Some(body["token"].as_str().unwrap().to_owned());
        self.user_id = body["user"]["id"].as_i64().unwrap();
        body
    }

    /// A password login that may be refused; the client keeps no token.
    pub async fn try_login(&self, name: &str, password: &str) -> Reply {
        self.post(
            "/api/v1/sessions",
            json!({"username": name, "password": password}),
        )
        .await
    }

    fn with_auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    pub async fn send_raw(&self, rb: reqwest::RequestBuilder) -> Reply {
        let response = self.with_auth(rb).send().await.expect("request");
        decode(response).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send_raw(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send_raw(self.http.delete(format!("{}{path}", self.base)))
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send_raw(self.http.post(format!("{}{path}", self.base)).json(&body))
            .await
    }

    pub async fn put(&self, path: &str) -> Reply {
        self.send_raw(self.http.put(format!("{}{path}", self.base)))
            .await
    }

    pub async fn put_json(&self, path: &str, body: Value) -> Reply {
        self.send_raw(self.http.put(format!("{}{path}", self.base)).json(&body))
            .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send_raw(self.http.patch(format!("{}{path}", self.base)).json(&body))
            .await
    }

    /// Creates a group room and returns its id.
    pub async fn create_room(&self, title: &str, visibility: &str) -> i64 {
        let (status, body) = self
            .post(
                "/api/v1/rooms",
                json!({"title": title, "visibility": visibility}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["room"]["id"].as_i64().unwrap()
    }

    pub async fn join(&self, room: i64) {
        let (status, body) = self
            .post(&format!("/api/v1/rooms/{room}/join"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Sends and returns the stored message.
    pub async fn say(&self, room: i64, client_msg_id: &str, text: &str) -> Value {
        log_check::secret(text);
        let (status, body) = self
            .post(
                &format!("/api/v1/rooms/{room}/messages"),
                json!({"client_msg_id": client_msg_id, "text": text}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["message"].clone()
    }

    /// A fresh cursor (a poll without one answers at once).
    pub async fn cursor(&self) -> String {
        let (status, body) = self.get("/api/v1/events").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["cursor"].as_str().unwrap().to_owned()
    }

    /// Starts a long poll on a task of its own and gives it time to park
    /// on the server, for tests of what ends a waiting poll.
    pub async fn parked_poll(&self, cursor: &str, timeout_secs: u64) -> JoinHandle<Reply> {
        let (client, cursor) = (self.clone(), cursor.to_owned());
        let poll = tokio::spawn(async move { client.poll(&cursor, timeout_secs).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        poll
    }

    /// One long poll.
    pub async fn poll(&self, cursor: &str, timeout_secs: u64) -> Reply {
        self.get(&format!(
            "/api/v1/events?cursor={cursor}&timeout={timeout_secs}"
        ))
        .await
    }
}

/// The whole suite's server logs, for the check that no secret reaches
/// them: with `NATTER_TEST_LOG_DIR` set (`.ci/run` sets it), every
/// in-process server logs at debug to `natter.log` there, and the
/// passwords, tokens, keys and message texts the tests use are listed in
/// `secrets.txt`; `scripts/check-log-secrets.py` then looks for each in
/// the log.
pub mod log_check {
    use std::io::Write;
    use std::path::PathBuf;
    use std::sync::{Mutex, OnceLock};

    fn dir() -> Option<&'static PathBuf> {
        static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
        DIR.get_or_init(|| std::env::var_os("NATTER_TEST_LOG_DIR").map(PathBuf::from))
            .as_ref()
    }

    /// Sends the servers' logs to the log file, once per test binary.
    pub fn init() {
        static INIT: std::sync::Once = std::sync::Once::new();
        INIT.call_once(|| {
            let Some(dir) = dir() else { return };
            std::fs::create_dir_all(dir).unwrap();
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("natter.log"))
                .unwrap();
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("natter=debug,info"))
                .with_ansi(false)
                .with_writer(Mutex::new(file))
                .try_init();
        });
    }

    /// Notes a secret the log must never contain (short, common strings
    /// would match by chance and are not worth listing).
    pub fn secret(value: &str) {
        let Some(dir) = dir() else { return };
        if value.chars().count() < 8 || value.contains('\n') {
            return;
        }
        static FILE: OnceLock<Mutex<std::fs::File>> = OnceLock::new();
        let file = FILE.get_or_init(|| {
            std::fs::create_dir_all(dir).unwrap();
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("secrets.txt"))
                .unwrap();
            Mutex::new(file)
        });
        writeln!(file.lock().unwrap(), "{value}").unwrap();
    }
}

/// How soon after a send a parked poll must answer in the API tests. The
/// product's target is well under 100 ms, measured by natter-bench
/// (docs/performance.md); the suite runs many servers and a browser at once
/// on two cores, where a wake-up still shows as tens of milliseconds and a
/// timer as seconds, so this bound separates the two without flaking.
pub const WAKE_BOUND: Duration = Duration::from_millis(250);

/// `rounds` times: `receiver` parks a poll, `sender` sends to `room`, and
/// the poll must answer with that message within `bound` of the send.
/// Returns the slowest wake-up.
pub async fn assert_wakes_within(
    sender: &Client,
    receiver: &Client,
    room: i64,
    rounds: usize,
    bound: Duration,
) -> Duration {
    let mut cursor = receiver.cursor().await;
    let mut slowest = Duration::ZERO;
    for round in 0..rounds {
        let poller = receiver.clone();
        let c = cursor.clone();
        let poll = tokio::spawn(async move {
            let reply = poller.poll(&c, 30).await;
            (reply, Instant::now())
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let text = format!("ping {round}");
        let sent_at = Instant::now();
        sender
            .say(room, &format!("wake-{}-{round}", rand_suffix()), &text)
            .await;
        let ((status, body), received_at) = poll.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(message_texts(&body), [text]);
        let latency = received_at.duration_since(sent_at);
        assert!(latency < bound, "round {round}: woke after {latency:?}");
        slowest = slowest.max(latency);
        cursor = body["cursor"].as_str().unwrap().to_owned();
    }
    slowest
}

/// A short random suffix, so client message ids differ between calls.
fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}

pub async fn decode(response: reqwest::Response) -> Reply {
    let status = response.status();
    let bytes = response.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "non-JSON body with status {status}: {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    (status, body)
}

/// Asserts an error answer's status and code.
#[track_caller]
pub fn assert_error(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.0, status, "expected {status} {code}, got {}", reply.1);
    assert_eq!(reply.1["error"]["code"], code, "body: {}", reply.1);
    assert!(
        reply.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "error without message: {}",
        reply.1
    );
}

/// The ephemeral items of type `kind` in a poll answer.
pub fn ephemeral_items<'a>(answer: &'a Value, kind: &str) -> Vec<&'a Value> {
    answer["ephemeral"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == kind)
        .collect()
}

/// Message texts of the `message` events in a poll answer.
pub fn message_texts(body: &Value) -> Vec<String> {
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "message")
        .map(|e| e["text"].as_str().unwrap().to_owned())
        .collect()
}

/// Four senders posting to `room` as `client` as fast as acks come, until
/// a send fails (the server was killed); each answers the ids that were
/// acknowledged.
pub fn send_until_refused(client: &Client, room: i64) -> Vec<JoinHandle<Vec<String>>> {
    (0..4)
        .map(|t| {
            let c = client.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for n in 0.. {
                    let id = format!("t{t}-{n}");
                    let sent = c
                        .http
                        .post(format!("{}/api/v1/rooms/{room}/messages", c.base))
                        .bearer_auth(c.token.as_deref().unwrap())
                        .json(&json!({"client_msg_id": id, "text": id}))
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status() == StatusCode::CREATED => acked.push(id),
                        _ => break,
                    }
                }
                acked
            })
        })
        .collect()
}

/// Every message text after `cursor`, polled without waiting until an
/// answer brings none; and the cursor reached.
pub async fn read_to_the_end(client: &Client, mut cursor: String) -> (Vec<String>, String) {
    let mut seen = Vec::new();
    loop {
        let (status, body) = client.poll(&cursor, 0).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let texts = message_texts(&body);
        if texts.is_empty() {
            return (seen, cursor);
        }
        seen.extend(texts);
        cursor = body["cursor"].as_str().unwrap().to_owned();
    }
}

/// Runs the real binary on a free port with its own data folder.
pub struct Process {
    pub child: Child,
    pub base: String,
}

/// The natter binary of this build as a command, run under `wrapper`
/// (e.g. `prlimit … --`) when one is given.
pub fn natter_command(wrapper: &[&str]) -> Command {
    let natter = env!("CARGO_BIN_EXE_natter");
    match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(natter);
            c
        }
        None => Command::new(natter),
    }
}

impl Process {
    pub async fn start(data: &std::path::Path) -> Process {
        Self::start_under(&[], data).await
    }

    /// Starts natter as the command of `wrapper` (e.g. `prlimit … --`).
    pub async fn start_under(wrapper: &[&str], data: &std::path::Path) -> Process {
        Self::start_full(wrapper, data, &[]).await
    }

    /// Starts natter with more settings in its environment (a node of a
    /// cluster: `NATTER_STORE`, `NATTER_BUS`).
    pub async fn start_with_env(data: &std::path::Path, env: &[(&str, &str)]) -> Process {
        Self::start_full(&[], data, env).await
    }

    async fn start_full(wrapper: &[&str], data: &std::path::Path, env: &[(&str, &str)]) -> Process {
        let port = StdListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = natter_command(wrapper)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data)
            .env("NATTER_LOG", "warn")
            // Tests send faster than a person; the limits have tests of their own.
            .env("NATTER_RATE_LIMITS", "off")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start natter");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = reqwest::get(format!("{base}/healthz")).await
                && r.status() == StatusCode::OK
            {
                break;
            }
            assert!(Instant::now() < deadline, "natter did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Process { child, base }
    }

    pub fn kill9(mut self) {
        // SIGKILL: no shutdown code runs at all.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

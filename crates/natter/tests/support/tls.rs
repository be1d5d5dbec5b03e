//! A PostgreSQL and a Redis of the test's own that speak only TLS, with
//! certificates made for the test: the machine's services stay as they
//! are, and every connection the test makes to these must be TLS.
//!
//! The certificates come from the `openssl` command: a test CA, a server
//! certificate it signs for `localhost` only (so `127.0.0.1` is a name
//! mismatch), and a second CA that signed nothing here. PostgreSQL runs
//! from the machine's binaries as the `postgres` user on a fresh data
//! folder, which needs root; Redis runs from `redis-server`. Where
//! something is missing the test says it skipped, except under
//! `CI=true`, where it fails.

// Each test crate that includes this uses a part of it.
#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::services::under_ci;

/// Says that `test` skipped because of `why`; under CI, fails.
fn skip(test: &str, why: &str) {
    if under_ci() {
        panic!("{test}: {why} (under CI this is a failure)");
    }
    eprintln!("SKIPPED {test}: {why}");
}

/// Runs `command`, failing the test with its output if it fails.
fn run(command: &mut Command) {
    let out = command.output().expect("the command runs");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The PostgreSQL role that signs in by certificate alone (pg_hba.conf's
/// `cert`), and the name in the test's client certificate.
pub const CERT_USER: &str = "natter_cert";

/// The test's certificates, in a folder of their own.
pub struct Certificates {
    dir: tempfile::TempDir,
}

impl Certificates {
    /// The CA that signed the servers' certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
    /// A CA that signed nothing the servers present.
    pub fn other_ca(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }
    /// A client certificate the test's CA signed, for the user
    /// [`CERT_USER`], and its key.
    pub fn client_cert(&self) -> PathBuf {
        self.dir.path().join("client.pem")
    }
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client.key")
    }
    fn server_cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }
    fn server_key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    /// Makes them with `openssl`, or `None` after saying why not.
    pub fn make(test: &str) -> Option<Certificates> {
        if Command::new("openssl").arg("version").output().is_err() {
            skip(test, "no `openssl` command to make the test's certificates");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        for ca in ["ca", "other-ca"] {
            run(Command::new("openssl")
                .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
                .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
                .arg("-keyout")
                .arg(at(&format!("{ca}.key")))
                .arg("-out")
                .arg(at(&format!("{ca}.pem")))
                .args(["-subj", &format!("/CN=natter test {ca}")])
                .args(["-addext", "basicConstraints=critical,CA:TRUE"])
                .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]));
        }
        for (name, subject, extensions) in [
            (
                "server",
                "/CN=localhost".to_owned(),
                "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n",
            ),
            (
                "client",
                format!("/CN={CERT_USER}"),
                "extendedKeyUsage=clientAuth\n",
            ),
        ] {
            let file = |ext: &str| at(&format!("{name}.{ext}"));
            run(Command::new("openssl")
                .args([
                    "req",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                ])
                .arg("-nodes")
                .arg("-keyout")
                .arg(file("key"))
                .arg("-out")
                .arg(file("csr"))
                .args(["-subj", &subject]));
            let usage = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n";
            std::fs::write(file("ext"), format!("{usage}{extensions}")).unwrap();
            run(Command::new("openssl")
                .args(["x509", "-req", "-days", "2", "-in"])
                .arg(file("csr"))
                .arg("-CA")
                .arg(at("ca.pem"))
                .arg("-CAkey")
                .arg(at("ca.key"))
                .arg("-CAcreateserial")
                .arg("-out")
                .arg(file("pem"))
                .arg("-extfile")
                .arg(file("ext")));
        }
        Some(Certificates { dir })
    }
}

/// A port no one listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process, stopped with `signal` when dropped.
struct Server {
    child: Child,
    signal: &'static str,
}

impl Server {
    /// Fails the test if the server has already exited, saying how.
    fn check_running(&mut self, what: &str) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("the test's {what} exited at start: {status}");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let signalled = Command::new("kill")
            .args([self.signal, &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        if !signalled {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A PostgreSQL that takes TLS connections only (`hostnossl … reject`),
/// with user `postgres` trusted over TLS and the superuser
/// [`CERT_USER`] let in by a client certificate the test's CA signed.
pub struct TlsPostgres {
    pub port: u16,
    // Stopped before its folder goes.
    server: Server,
    dir: tempfile::TempDir,
}

impl TlsPostgres {
    /// `postgres://<user>@<host>:<port>/postgres?<params>`.
    pub fn url_as(&self, user: &str, host: &str, params: &str) -> String {
        format!("postgres://{user}@{host}:{}/postgres?{params}", self.port)
    }

    /// [`Self::url_as`] user `postgres`.
    pub fn url(&self, host: &str, params: &str) -> String {
        self.url_as("postgres", host, params)
    }

    /// The folder of its Unix socket, where a test's own connection needs
    /// no TLS.
    pub fn socket_dir(&self) -> String {
        self.dir.path().display().to_string()
    }

    /// Starts one, or `None` after saying why not.
    pub async fn start(test: &str, certificates: &Certificates) -> Option<TlsPostgres> {
        let Some(bin) = postgres_bin() else {
            skip(
                test,
                "no PostgreSQL server binaries under /usr/lib/postgresql",
            );
            return None;
        };
        if !is_root() {
            skip(
                test,
                "a PostgreSQL of the test's own runs as `postgres`, which needs root",
            );
            return None;
        }
        let Some((uid, gid)) = postgres_user() else {
            skip(test, "no `postgres` user to run the test's PostgreSQL as");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("pg");
        for (from, to) in [
            (certificates.server_cert(), "server.pem"),
            (certificates.server_key(), "server.key"),
            (certificates.ca(), "ca.pem"),
        ] {
            std::fs::copy(from, dir.path().join(to)).unwrap();
        }
        run(Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(dir.path()));
        run(Command::new("chmod")
            .arg("0600")
            .arg(dir.path().join("server.key")));
        run(Command::new(bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
            .args(["--locale", "C"])
            .uid(uid)
            .gid(gid));
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all natter_cert 127.0.0.1/32 cert\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostnossl all all 0.0.0.0/0 reject\n",
        )
        .unwrap();
        let port = free_port();
        let child = Command::new(bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "ssl=on"])
            .args(
                ["ssl_cert_file", "ssl_key_file", "ssl_ca_file"]
                    .iter()
                    .zip(["server.pem", "server.key", "ca.pem"])
                    .flat_map(|(setting, file)| {
                        [
                            "-c".to_owned(),
                            format!("{setting}={}", dir.path().join(file).display()),
                        ]
                    }),
            )
            .args(["-c", "max_connections=60", "-c", "shared_buffers=16MB"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .uid(uid)
            .gid(gid)
            .spawn()
            .expect("postgres starts");
        let mut server = Server {
            child,
            // Immediate shutdown: the folder goes with the test.
            signal: "-QUIT",
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = Command::new(bin.join("pg_isready"))
                .arg("-h")
                .arg(dir.path())
                .args(["-p", &port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                break;
            }
            server.check_running("PostgreSQL");
            assert!(
                Instant::now() < deadline,
                "the test's PostgreSQL never got ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        run(Command::new(bin.join("psql"))
            .arg("-h")
            .arg(dir.path())
            .args(["-p", &port.to_string(), "-U", "postgres", "-qX", "-c"])
            .arg(format!("CREATE ROLE {CERT_USER} LOGIN SUPERUSER"))
            .uid(uid)
            .gid(gid));
        Some(TlsPostgres { port, server, dir })
    }
}

/// A Redis with no plain port, only a TLS one, that asks every client
/// for a certificate the test's CA signed (Redis's default once it
/// speaks TLS).
pub struct TlsRedis {
    pub port: u16,
    _server: Server,
}

impl TlsRedis {
    /// `rediss://<host>:<port>`.
    pub fn url(&self, host: &str) -> String {
        format!("rediss://{host}:{}", self.port)
    }

    /// Starts one, or `None` after saying why not.
    pub async fn start(test: &str, certificates: &Certificates) -> Option<TlsRedis> {
        let port = free_port();
        let spawned = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--tls-cert-file")
            .arg(certificates.server_cert())
            .arg("--tls-key-file")
            .arg(certificates.server_key())
            .arg("--tls-ca-cert-file")
            .arg(certificates.ca())
            .args(["--tls-auth-clients", "yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = spawned else {
            skip(test, "no `redis-server` to run a Redis of the test's own");
            return None;
        };
        let mut server = Server {
            child,
            signal: "-TERM",
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            server.check_running("Redis");
            assert!(Instant::now() < deadline, "the test's Redis never listened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(TlsRedis {
            port,
            _server: server,
        })
    }
}

/// The newest PostgreSQL's binaries: `NATTER_TEST_POSTGRES_BIN`, or the
/// highest version under /usr/lib/postgresql.
fn postgres_bin() -> Option<PathBuf> {
    if let Ok(bin) = std::env::var("NATTER_TEST_POSTGRES_BIN") {
        return Some(PathBuf::from(bin));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// Whether this process runs as root.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// The `postgres` user's uid and gid.
fn postgres_user() -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, "postgres"]).output().ok()?;
        std::str::from_utf8(&out.stdout).ok()?.trim().parse().ok()
    };
    id("-u").zip(id("-g"))
}

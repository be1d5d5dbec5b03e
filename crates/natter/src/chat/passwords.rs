//! Password hashing on a small pool of dedicated threads.
//!
//! Argon2id needs ~19 MiB per hash. Run on tokio's blocking pool, every one
//! of its (up to hundreds of) threads would keep such a block in its own
//! malloc arena after a burst of logins, and the server's memory would grow
//! by gigabytes. A fixed pool, one thread per core, bounds that and also
//! bounds how much CPU a login flood can take from message delivery.

use std::sync::{Mutex, mpsc};
use std::thread;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::oneshot;

use crate::error::{ChatError, ChatResult};

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of hashing threads.
pub(super) struct PasswordPool {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl PasswordPool {
    /// Starts one hashing thread per available core.
    pub(super) fn start() -> PasswordPool {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = std::sync::Arc::new(Mutex::new(queue));
        let threads = thread::available_parallelism().map_or(2, |n| n.get());
        for i in 0..threads {
            let queue = queue.clone();
            let spawned = thread::Builder::new()
                .name(format!("natter-passwords-{i}"))
                .spawn(move || {
                    loop {
                        let job = queue.lock().expect("password queue poisoned").recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password hashing thread");
            }
        }
        PasswordPool {
            jobs: Mutex::new(jobs),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> ChatResult<T> + Send + 'static,
    ) -> ChatResult<T> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = reply.send(work());
        });
        self.jobs
            .lock()
            .expect("password pool poisoned")
            .send(job)
            .map_err(|_| ChatError::Internal("password threads have stopped".into()))?;
        answer
            .await
            .map_err(|_| ChatError::Internal("a password job was dropped".into()))?
    }

    /// Hashes a password with argon2id and a fresh salt (PHC string format).
    pub(super) async fn hash(&self, password: String) -> ChatResult<String> {
        self.run(move || {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| ChatError::Internal(format!("password hashing failed: {e}")))
        })
        .await
    }

    /// Checks a password against a stored PHC hash.
    pub(super) async fn verify(&self, password: String, hash: String) -> ChatResult<bool> {
        self.run(move || {
            let parsed = PasswordHash::new(&hash)
                .map_err(|e| ChatError::Internal(format!("stored hash unreadable: {e}")))?;
            Ok(Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok())
        })
        .await
    }
}

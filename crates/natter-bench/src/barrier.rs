//! A meeting point for several generator processes that drive one
//! deployment together (one process holds at most ~19,000 clients): each
//! step of S3 waits until every process has its clients connected, so
//! the memory each one reads is the whole deployment's at that step and
//! their sends run side by side.
//!
//! File-based, because the processes share nothing else: a party
//! arriving at a point creates `<dir>/<point>.<pid>` and waits until
//! `parties` such files exist.

use std::path::PathBuf;
use std::time::Duration;

/// Where and how many processes meet.
#[derive(Clone, Debug)]
pub struct Barrier {
    dir: PathBuf,
    parties: usize,
}

/// How long a party waits for the others before giving up: setup of
/// 17,000 users on a loaded machine takes minutes.
const PATIENCE: Duration = Duration::from_secs(900);

impl Barrier {
    /// Meets `parties` processes (this one among them) in `dir`.
    pub fn new(dir: PathBuf, parties: usize) -> anyhow::Result<Barrier> {
        anyhow::ensure!(parties >= 1, "--parties must be at least 1");
        std::fs::create_dir_all(&dir)?;
        Ok(Barrier { dir, parties })
    }

    /// How many processes meet.
    pub fn parties(&self) -> usize {
        self.parties
    }

    /// Arrives at `point` and returns when every party has.
    pub async fn meet(&self, point: &str) -> anyhow::Result<()> {
        let mine = self.dir.join(format!("{point}.{}", std::process::id()));
        std::fs::write(&mine, b"")?;
        let prefix = format!("{point}.");
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let arrived = std::fs::read_dir(&self.dir)?
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .count();
            if arrived >= self.parties {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "only {arrived} of {} generators reached {point:?} in {}",
                self.parties,
                self.dir.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Barrier;

    #[tokio::test]
    async fn a_party_waits_for_the_others() {
        let dir = std::env::temp_dir().join(format!("natter-bench-barrier-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let barrier = Barrier::new(dir.clone(), 2).unwrap();
        let waiting = tokio::spawn({
            let barrier = barrier.clone();
            async move { barrier.meet("step-1").await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "met alone");
        // The other party, as another process would: its own file.
        std::fs::write(dir.join("step-1.other"), b"").unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

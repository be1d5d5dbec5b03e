//! How an import shows its progress: a bar on a terminal, a plain line
//! every few seconds in a log or a pipe.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Reports progress: a bar on a terminal, a plain line every few seconds
/// otherwise (a log file, a pipe).
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last_line: Mutex<Instant>,
}

impl Progress {
    pub fn new() -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            last_line: Mutex::new(Instant::now()),
        }
    }

    /// Shows `text` now on a terminal; in a log, at most every 5 s.
    pub(super) fn note(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(text.to_owned()),
            None => {
                let mut last = self.last_line.lock().expect("progress poisoned");
                if last.elapsed() >= Duration::from_secs(5) {
                    *last = Instant::now();
                    eprintln!("{text}");
                }
            }
        }
    }

    /// Another handle on the same bar, for a task of its own.
    pub(super) fn share(&self) -> Progress {
        Progress {
            bar: self.bar.clone(),
            last_line: Mutex::new(Instant::now()),
        }
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

//! How a long command (an archive import, a store migration) shows its
//! progress: a bar on a terminal, a plain line every few seconds in a log
//! or a pipe.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a log gets a line.
const LINE_EVERY: Duration = Duration::from_secs(5);

/// Reports progress: a bar on a terminal, a plain line every few seconds
/// otherwise (a log file, a pipe). Handles made by [`Progress::share`]
/// show on the same bar and share the log's pace.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last_line: Arc<Mutex<Instant>>,
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
            last_line: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// Shows `text` now on a terminal; in a log, at most every 5 s.
    pub(crate) fn note(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(text.to_owned()),
            None => {
                let mut last = self.last_line.lock().expect("progress poisoned");
                if last.elapsed() >= LINE_EVERY {
                    *last = Instant::now();
                    eprintln!("{text}");
                }
            }
        }
    }

    /// Shows `text` as a line of its own, on a terminal above the bar.
    pub(crate) fn say(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// Turns the spinner into a bar of `total` steps (messages).
    pub(crate) fn set_total(&self, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{wide_bar} {percent:>3}% {msg}")
                    .expect("a valid template"),
            );
        }
    }

    /// Moves the bar to `done` of its total.
    pub(crate) fn set_done(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
    }

    /// Another handle on the same bar, for a task of its own.
    pub(crate) fn share(&self) -> Progress {
        Progress {
            bar: self.bar.clone(),
            last_line: self.last_line.clone(),
        }
    }

    pub(crate) fn finish(&self) {
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

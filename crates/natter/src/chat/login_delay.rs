//! The growing delay after wrong passwords, per account.
//!
//! An account takes a few wrong passwords in a row for free; after that
//! each further attempt must wait twice as long as the one before (1 s,
//! 2 s, 4 s, … up to a ceiling), and only one attempt may be in flight at
//! a time, so guesses sent at once from many addresses gain nothing
//! while the first is still being checked. A right password clears the
//! run. The delay never touches the owner's open sessions: a stranger
//! hammering an account cannot lock its owner out of conversations
//! already open.
//!
//! The log is bounded: it is swept when it has doubled since the last
//! sweep, dropping runs older than an hour (or the ceiling) whose delay is
//! over, then, if still full, runs still below the free failures (the
//! junk names of a spray), then the oldest half.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries before the first sweep.
const SWEEP_AT: usize = 10_000;
/// Entries kept at most.
const MAX_ENTRIES: usize = 200_000;

/// One account's run of wrong passwords, and its attempts in flight.
struct Run {
    count: u32,
    in_flight: u32,
    last: Instant,
    /// No attempt before this.
    until: Instant,
}

/// Every account's run.
pub(super) struct LoginDelays {
    runs: Mutex<Runs>,
    free_failures: u32,
    max_delay: Duration,
}

struct Runs {
    by_account: HashMap<String, Run>,
    sweep_at: usize,
}

/// One login attempt on an account, in flight until it says how it
/// ended; dropped without a word (the request was cancelled) it counts as
/// neither.
pub(super) struct LoginAttempt<'a> {
    delays: &'a LoginDelays,
    account: String,
    open: bool,
}

impl LoginDelays {
    pub(super) fn new(free_failures: u32, max_delay: Duration) -> LoginDelays {
        LoginDelays {
            runs: Mutex::new(Runs {
                by_account: HashMap::new(),
                sweep_at: SWEEP_AT,
            }),
            free_failures,
            max_delay,
        }
    }

    /// Starts an attempt on `account`, or says how long to wait.
    pub(super) fn begin(&self, account: &str) -> Result<LoginAttempt<'_>, Duration> {
        let now = Instant::now();
        let mut runs = self.runs.lock().expect("login runs poisoned");
        if runs.by_account.len() >= runs.sweep_at {
            self.sweep(&mut runs, now);
        }
        let run = runs.by_account.entry(account.to_owned()).or_insert(Run {
            count: 0,
            in_flight: 0,
            last: now,
            until: now,
        });
        if run.until > now {
            return Err(run.until - now);
        }
        // Past the free failures, one guess at a time.
        if run.in_flight > 0 && run.count.saturating_add(run.in_flight) >= self.free_failures {
            return Err(Duration::from_secs(1));
        }
        run.in_flight += 1;
        Ok(LoginAttempt {
            delays: self,
            account: account.to_owned(),
            open: true,
        })
    }

    fn end(&self, account: &str, failed: bool) {
        let now = Instant::now();
        let mut runs = self.runs.lock().expect("login runs poisoned");
        let Some(run) = runs.by_account.get_mut(account) else {
            return;
        };
        run.in_flight = run.in_flight.saturating_sub(1);
        if failed {
            run.count = run.count.saturating_add(1);
            run.last = now;
            if run.count >= self.free_failures {
                let doublings = (run.count - self.free_failures).min(20);
                run.until = now + Duration::from_secs(1u64 << doublings).min(self.max_delay);
            }
        } else if run.in_flight == 0 {
            runs.by_account.remove(account);
        } else {
            run.count = 0;
            run.until = now;
        }
    }

    fn sweep(&self, runs: &mut Runs, now: Instant) {
        let keep = self.max_delay.max(Duration::from_secs(3600));
        runs.by_account
            .retain(|_, r| r.in_flight > 0 || r.until > now || now.duration_since(r.last) < keep);
        if runs.by_account.len() >= MAX_ENTRIES / 2 {
            let free = self.free_failures;
            runs.by_account
                .retain(|_, r| r.in_flight > 0 || r.until > now || r.count >= free);
        }
        if runs.by_account.len() >= MAX_ENTRIES / 2 {
            let mut ages: Vec<Instant> = runs.by_account.values().map(|r| r.last).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            runs.by_account
                .retain(|_, r| r.in_flight > 0 || r.last >= cut);
        }
        runs.sweep_at = (runs.by_account.len() * 2).clamp(SWEEP_AT, MAX_ENTRIES);
    }
}

impl LoginAttempt<'_> {
    /// The password was wrong.
    pub(super) fn failed(mut self) {
        self.open = false;
        self.delays.end(&self.account, true);
    }

    /// The password was right: the run is cleared.
    pub(super) fn succeeded(mut self) {
        self.open = false;
        self.delays.end(&self.account, false);
    }
}

impl Drop for LoginAttempt<'_> {
    fn drop(&mut self) {
        if self.open {
            let mut runs = self.delays.runs.lock().expect("login runs poisoned");
            if let Some(run) = runs.by_account.get_mut(&self.account) {
                run.in_flight = run.in_flight.saturating_sub(1);
                if run.in_flight == 0 && run.count == 0 {
                    runs.by_account.remove(&self.account);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waits(delays: &LoginDelays, account: &str) -> Duration {
        match delays.begin(account) {
            Err(wait) => wait,
            Ok(_) => panic!("{account} was not delayed"),
        }
    }

    /// Ends `account`'s current delay, as if it had been waited out.
    fn wait_out(delays: &LoginDelays, account: &str) {
        let mut runs = delays.runs.lock().unwrap();
        runs.by_account.get_mut(account).unwrap().until = Instant::now();
    }

    #[test]
    fn wrong_passwords_grow_the_delay_and_a_right_one_clears_it() {
        let delays = LoginDelays::new(2, Duration::from_secs(900));
        delays.begin("alice").unwrap().failed();
        delays.begin("alice").unwrap().failed();
        assert!(waits(&delays, "alice") <= Duration::from_secs(1));
        // A later failure doubles it.
        wait_out(&delays, "alice");
        delays.begin("alice").unwrap().failed();
        assert!(
            waits(&delays, "alice") > Duration::from_secs(1),
            "the delay doubles"
        );
        delays.begin("bob").unwrap().succeeded();
        wait_out(&delays, "alice");
        delays.begin("alice").unwrap().succeeded();
        assert!(delays.runs.lock().unwrap().by_account.is_empty(), "cleared");
    }

    #[test]
    fn guesses_at_once_gain_nothing_past_the_free_failures() {
        let delays = LoginDelays::new(3, Duration::from_secs(900));
        let first: Vec<_> = (0..3).map(|_| delays.begin("alice").unwrap()).collect();
        // Three in flight reach the free failures: a fourth must wait.
        assert!(delays.begin("alice").is_err());
        drop(first);
        assert!(
            delays.begin("alice").is_ok(),
            "cancelled attempts count as nothing"
        );
    }

    #[test]
    fn a_spray_of_names_cannot_flush_a_targeted_account() {
        let delays = LoginDelays::new(2, Duration::from_secs(900));
        for _ in 0..2 {
            delays.begin("target").unwrap().failed();
        }
        for i in 0..(MAX_ENTRIES + 10) {
            delays.begin(&format!("junk{i}")).unwrap().failed();
        }
        // The target's run survives the spray (its 1 s delay itself may
        // have run out while a slow machine sent 200,000 names).
        let runs = delays.runs.lock().unwrap();
        assert!(
            runs.by_account.get("target").is_some_and(|r| r.count == 2),
            "the target's failures survive the spray"
        );
        assert!(runs.by_account.len() <= MAX_ENTRIES);
    }
}

//! The single-node bus: delivers synchronously to subscribers in this
//! process, so a send's waiters are woken before the sender is answered.

use std::sync::{RwLock, Weak};

use super::{Bus, BusMessage, BusSink};

/// In-process [`Bus`].
#[derive(Default)]
pub struct LocalBus {
    sinks: RwLock<Vec<Weak<dyn BusSink>>>,
}

impl LocalBus {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Bus for LocalBus {
    fn publish(&self, message: BusMessage) {
        let sinks = self.sinks.read().expect("bus lock poisoned");
        for sink in sinks.iter().filter_map(Weak::upgrade) {
            sink.deliver(&message);
        }
    }

    fn subscribe(&self, sink: Weak<dyn BusSink>) {
        let mut sinks = self.sinks.write().expect("bus lock poisoned");
        sinks.retain(|s| s.strong_count() > 0);
        sinks.push(sink);
    }
}

//! The bound on exports running at once: each holds a database connection,
//! a blocking thread and a few chunks of memory for as long as its client
//! takes to download, so a handful of slow clients must not take them all.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Exports one node runs at once; beyond, `GET /api/export` answers 503.
pub const MAX_EXPORTS: usize = 4;

/// Free export slots.
pub struct ExportSlots {
    free: Arc<Semaphore>,
    max: usize,
}

/// A running export's slot, given back when dropped (the export ended,
/// failed or lost its client).
pub struct ExportSlot(#[allow(dead_code)] OwnedSemaphorePermit);

impl ExportSlots {
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        Self {
            free: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// A slot, unless every one is taken.
    pub fn try_acquire(&self) -> Option<ExportSlot> {
        Arc::clone(&self.free)
            .try_acquire_owned()
            .ok()
            .map(ExportSlot)
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Exports running now.
    pub fn running(&self) -> usize {
        self.max.saturating_sub(self.free.available_permits())
    }
}

impl Default for ExportSlots {
    fn default() -> Self {
        Self::new(MAX_EXPORTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_come_back_when_dropped() {
        let slots = ExportSlots::new(2);
        let a = slots.try_acquire().expect("first");
        let _b = slots.try_acquire().expect("second");
        assert!(slots.try_acquire().is_none());
        assert_eq!(slots.running(), 2);
        drop(a);
        assert_eq!(slots.running(), 1);
        assert!(slots.try_acquire().is_some());
    }
}

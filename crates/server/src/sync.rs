//! Locks that keep working after a panic.
//!
//! A lock is poisoned when a thread panicked while holding it. Every lock in
//! the server guards in-memory data (counters, maps, queues, the live views)
//! whose critical sections are short and make no external calls that could
//! panic half-way through an update; the worst a panic can leave behind is a
//! stale or missing entry, which the next update overwrites. Refusing the
//! lock instead (`lock().unwrap()`) would turn one panicked request into a
//! panic in every later request that touches the same data: the whole
//! server down instead of one answer lost. So the server takes poisoned
//! locks as they are, through these helpers.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `mutex`, poisoned or not.
pub fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Read-locks `lock`, poisoned or not.
pub fn read<T: ?Sized>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Write-locks `lock`, poisoned or not.
pub fn write<T: ?Sized>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Panics in a thread while `acquire`'s guard is held: `lock` is then
    /// poisoned.
    fn poison<'a, L: Sync, G>(lock: &'a L, acquire: impl FnOnce(&'a L) -> G + Send) {
        std::thread::scope(|scope| {
            let panicked = scope
                .spawn(move || {
                    let _guard = acquire(lock);
                    panic!("poisoning on purpose");
                })
                .join();
            assert!(panicked.is_err());
        });
    }

    #[test]
    fn a_poisoned_mutex_still_gives_its_data() {
        let mutex = Mutex::new(1);
        poison(&mutex, |m| {
            let mut guard = m.lock().unwrap();
            *guard = 2;
            guard
        });
        assert!(mutex.is_poisoned());
        assert_eq!(*lock(&mutex), 2);
        *lock(&mutex) += 1;
        assert_eq!(*lock(&mutex), 3);
    }

    #[test]
    fn a_poisoned_rwlock_still_gives_its_data() {
        let rwlock = RwLock::new(vec![1]);
        poison(&rwlock, |l| l.write().unwrap());
        assert!(rwlock.is_poisoned());
        write(&rwlock).push(2);
        assert_eq!(*read(&rwlock), [1, 2]);
    }
}

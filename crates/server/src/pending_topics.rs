//! Subscriptions to per-symbol topics of symbols that have no data yet.
//!
//! A program may subscribe to `ticks:<SYMBOL>` before the first tick of that
//! symbol arrives. Such a topic costs a channel and a flusher but holds no
//! data, so the node allows a bounded number of them in all
//! (`--max-pending-topics`); each lives only while someone subscribes to it,
//! and beyond the bound the subscription is an `unknown_topic` error.

use std::collections::HashMap;
use std::sync::Mutex;

use pulse_core::protocol::Topic;

use super::sync::lock;

pub struct PendingTopics {
    max: usize,
    /// Subscribers per pending topic.
    subscribers: Mutex<HashMap<Topic, usize>>,
}

impl PendingTopics {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            subscribers: Mutex::default(),
        }
    }

    fn subscribers(&self) -> std::sync::MutexGuard<'_, HashMap<Topic, usize>> {
        lock(&self.subscribers)
    }

    /// Counts one more subscriber of `topic`; `false` when the topic is new
    /// and the node already holds its limit of pending topics.
    pub fn join(&self, topic: &Topic) -> bool {
        let mut subscribers = self.subscribers();
        if let Some(n) = subscribers.get_mut(topic) {
            *n += 1;
            return true;
        }
        if subscribers.len() >= self.max {
            return false;
        }
        subscribers.insert(topic.clone(), 1);
        true
    }

    /// Counts one subscriber less; `true` when it was the last, so the
    /// caller can drop the topic unless its symbol has data by now.
    pub fn leave(&self, topic: &Topic) -> bool {
        let mut subscribers = self.subscribers();
        match subscribers.get_mut(topic) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                subscribers.remove(topic);
                true
            }
            None => false,
        }
    }

    pub fn len(&self) -> usize {
        self.subscribers().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn max(&self) -> usize {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_topics_are_bounded_and_live_while_subscribed() {
        let pending = PendingTopics::new(2);
        let (a, b, c) = (
            Topic::SymbolTicks("A".into()),
            Topic::SymbolTicks("B".into()),
            Topic::Candles("C".into()),
        );
        assert!(pending.join(&a) && pending.join(&a) && pending.join(&b));
        assert!(!pending.join(&c), "a third topic is over the bound");
        assert!(!pending.leave(&a), "one subscriber of A is left");
        assert!(pending.leave(&a), "the last one");
        assert!(pending.join(&c), "A's slot is free again");
        assert_eq!(pending.len(), 2);
        assert!(!pending.leave(&a), "leaving twice is harmless");
    }
}

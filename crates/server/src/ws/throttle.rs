//! The per-connection rate of `publish` and `analyze`, enforced by reading slower.

/// Token buckets for the requests of one connection that cost the server
/// work: `publish` (records per second) and `analyze`. Over the rate the
/// connection is simply not read until a token is due, so a fast producer
/// is slowed down (TCP backpressure) rather than refused: nothing it sends
/// is lost.
pub(super) struct Throttle {
    publish: Bucket,
    analyze: Bucket,
    paused_until: Option<tokio::time::Instant>,
}

struct Bucket {
    per_second: f64,
    tokens: f64,
    at: tokio::time::Instant,
}

impl Bucket {
    pub(super) fn new(per_second: f64) -> Self {
        Self {
            per_second,
            tokens: Self::burst(per_second),
            at: tokio::time::Instant::now(),
        }
    }

    pub(super) fn burst(per_second: f64) -> f64 {
        (per_second * 2.0).max(1.0)
    }

    /// Takes a token (going into debt if none is left); returns how long
    /// until the debt is paid off, if there is one.
    pub(super) fn take(&mut self, now: tokio::time::Instant) -> Option<std::time::Duration> {
        if self.per_second <= 0.0 {
            return None;
        }
        let refill = now.duration_since(self.at).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(Self::burst(self.per_second)) - 1.0;
        self.at = now;
        (self.tokens < 0.0)
            .then(|| std::time::Duration::from_secs_f64(-self.tokens / self.per_second))
    }
}

impl Throttle {
    /// Rates are per second; 0 means unlimited.
    pub(super) fn new(publish_rate: f64, analyze_rate: f64) -> Self {
        Self {
            publish: Bucket::new(publish_rate),
            analyze: Bucket::new(analyze_rate),
            paused_until: None,
        }
    }

    pub(super) fn take_publish(&mut self) {
        let now = tokio::time::Instant::now();
        let wait = self.publish.take(now);
        self.pause(now, wait);
    }

    pub(super) fn take_analyze(&mut self) {
        let now = tokio::time::Instant::now();
        let wait = self.analyze.take(now);
        self.pause(now, wait);
    }

    pub(super) fn pause(&mut self, now: tokio::time::Instant, wait: Option<std::time::Duration>) {
        if let Some(wait) = wait {
            let until = now + wait;
            self.paused_until = Some(self.paused_until.map_or(until, |u| u.max(until)));
        }
    }

    pub(super) fn paused_until(&self) -> Option<tokio::time::Instant> {
        self.paused_until
    }

    pub(super) fn resume(&mut self) {
        self.paused_until = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_producer_over_its_rate_is_paused_not_refused() {
        let mut throttle = Throttle::new(10.0, 0.0);
        for _ in 0..20 {
            throttle.take_publish();
        }
        assert!(
            throttle.paused_until().is_none(),
            "a burst of twice the rate passes"
        );
        throttle.take_publish();
        let until = throttle.paused_until().expect("paused");
        let wait = until - tokio::time::Instant::now();
        assert!(wait > std::time::Duration::ZERO && wait <= std::time::Duration::from_millis(100));
        throttle.resume();
        for _ in 0..1_000 {
            throttle.take_analyze();
        }
        assert!(throttle.paused_until().is_none(), "0 means unlimited");
    }
}

//! Per-client token buckets (ingest, the dashboard's server functions).
//!
//! A client is its address; a whole IPv6 /64 counts as one client, since one
//! host usually gets a /64 and could otherwise take a fresh bucket per address.
//! The map is bounded: a bucket that has refilled is forgotten (a client
//! that comes back starts full anyway, so nothing changes for it), and past
//! [`MAX_CLIENTS`] the clients seen least recently are forgotten too (they
//! start again with a full burst).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::sync::lock;

/// Clients remembered per limiter. Buckets refill within `burst / rate`
/// seconds (2 s with the default burst), so only clients active within that
/// window compete for these slots.
pub const MAX_CLIENTS: usize = 10_000;

/// The key of a client: its IPv4 address, or its IPv6 /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets, one per client: `per_second` tokens a second, bursts of
/// twice that (at least 1).
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    max_clients: usize,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
    /// Nodes sharing the limit (see [`RateLimiter::share_among`]).
    nodes: std::sync::atomic::AtomicU32,
}

impl RateLimiter {
    /// `per_second <= 0` (or NaN) means unlimited.
    pub fn new(per_second: f64) -> Self {
        Self::with_max_clients(per_second, MAX_CLIENTS)
    }

    pub fn with_max_clients(per_second: f64, max_clients: usize) -> Self {
        Self {
            per_second,
            burst: (per_second * 2.0).max(1.0),
            max_clients: max_clients.max(1),
            buckets: Mutex::new(HashMap::new()),
            nodes: std::sync::atomic::AtomicU32::new(1),
        }
    }

    /// In a cluster of `nodes`, each node allows a client its share of the
    /// rate (and burst), so a client spreading its requests over every node
    /// behind a load balancer gets the configured rate in all, not `nodes`
    /// times it.
    pub fn share_among(&self, nodes: u32) {
        self.nodes
            .store(nodes.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// This node's share: tokens a second and the burst.
    fn share(&self) -> (f64, f64) {
        let nodes = f64::from(self.nodes.load(std::sync::atomic::Ordering::Relaxed).max(1));
        let per_second = self.per_second / nodes;
        (per_second, (self.burst / nodes).max(1.0))
    }

    /// The configured rate (tokens per second per client).
    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    fn unlimited(&self) -> bool {
        // NaN also counts as "no limit".
        self.per_second.is_nan() || self.per_second <= 0.0
    }

    /// Takes one token for `client`; `false` when it has none left.
    pub fn allow(&self, client: IpAddr, now: Instant) -> bool {
        self.check(client, now).is_ok()
    }

    /// Takes one token for `client`, or says how long until one is there.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.unlimited() {
            return Ok(());
        }
        let key = client_key(client);
        let mut buckets = lock(&self.buckets);
        if !buckets.contains_key(&key) && buckets.len() >= self.max_clients {
            self.make_room(&mut buckets, now);
        }
        let (per_second, burst) = self.share();
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        bucket.tokens = self.refilled(bucket, now);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / per_second;
            Err(Duration::try_from_secs_f64(wait).unwrap_or(Duration::from_secs(1)))
        }
    }

    /// Clients remembered now.
    pub fn len(&self) -> usize {
        lock(&self.buckets).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let (per_second, burst) = self.share();
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * per_second).min(burst)
    }

    /// Forgets refilled buckets; if that frees less than an eighth of the
    /// slots, also the least recently seen clients down to 7/8 full, so a
    /// sweep (O(n)) happens at most once every n/8 new clients.
    fn make_room(&self, buckets: &mut HashMap<IpAddr, Bucket>, now: Instant) {
        let (_, burst) = self.share();
        buckets.retain(|_, bucket| self.refilled(bucket, now) < burst);
        let target = self.max_clients - self.max_clients / 8 - 1;
        if buckets.len() <= target {
            return;
        }
        let excess = buckets.len() - target;
        let mut by_age: Vec<(Instant, IpAddr)> = buckets.iter().map(|(k, b)| (b.at, *k)).collect();
        by_age.select_nth_unstable_by_key(excess - 1, |(at, _)| *at);
        for (_, key) in &by_age[..excess] {
            buckets.remove(key);
        }
    }
}

/// A `Retry-After` for a [`RateLimiter::check`] refusal: whole seconds,
/// at least one.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_shares_one_clients_rate_among_its_nodes() {
        let start = Instant::now();
        let alone = RateLimiter::new(10.0);
        let allowed = (0..100).filter(|_| alone.allow(v4(1), start)).count();
        assert_eq!(allowed, 20, "a burst of twice the rate");
        let shared = RateLimiter::new(10.0);
        shared.share_among(4);
        let allowed = (0..100).filter(|_| shared.allow(v4(1), start)).count();
        assert_eq!(allowed, 5, "a quarter of the burst on each of 4 nodes");
        // One second later: a quarter of the rate came back.
        let later = start + Duration::from_secs(1);
        let refilled = (0..100).filter(|_| shared.allow(v4(1), later)).count();
        assert!((2..=3).contains(&refilled), "{refilled}");
    }

    fn v4(n: u32) -> IpAddr {
        IpAddr::V4(n.into())
    }

    #[test]
    fn refills_over_time() {
        let limiter = RateLimiter::new(1.0);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let start = Instant::now();
        assert!(limiter.allow(ip, start));
        assert!(limiter.allow(ip, start));
        assert_eq!(
            limiter.check(ip, start),
            Err(Duration::from_secs(1)),
            "burst of 2 used up; the next token is a second away"
        );
        assert!(limiter.allow(ip, start + Duration::from_millis(1100)));
    }

    #[test]
    fn zero_or_nan_means_unlimited_and_remembers_nothing() {
        for rate in [0.0, -1.0, f64::NAN] {
            let limiter = RateLimiter::new(rate);
            let now = Instant::now();
            assert!((0..100).all(|_| limiter.allow(v4(1), now)));
            assert!(limiter.is_empty());
        }
    }

    #[test]
    fn the_map_never_holds_more_than_its_cap() {
        let limiter = RateLimiter::with_max_clients(5.0, 64);
        let now = Instant::now();
        // Busy clients that never go idle: none of them has refilled.
        for n in 0..10_000 {
            let _ = limiter.allow(v4(n), now + Duration::from_micros(u64::from(n)));
            assert!(limiter.len() <= 64, "{} entries after {n}", limiter.len());
        }
        // The most recent clients are still remembered (their buckets are
        // not full): the newest one has used a token.
        let last = v4(9_999);
        let at = now + Duration::from_micros(9_999);
        let used: Vec<bool> = (0..10).map(|_| limiter.allow(last, at)).collect();
        assert_eq!(used.iter().filter(|ok| **ok).count(), 9, "{used:?}");
    }

    #[test]
    fn idle_clients_are_forgotten_first() {
        let limiter = RateLimiter::with_max_clients(5.0, 16);
        let start = Instant::now();
        // A client that used its whole burst...
        while limiter.allow(v4(1), start) {}
        // ...and 15 that come and go; then, once they have all refilled,
        // one more client needs a slot.
        for n in 2..=16 {
            assert!(limiter.allow(v4(n), start));
        }
        assert_eq!(limiter.len(), 16);
        let later = start + Duration::from_secs(3);
        assert!(limiter.allow(v4(100), later));
        assert_eq!(limiter.len(), 1, "every refilled bucket was dropped");
    }

    #[test]
    fn an_ipv6_slash_64_is_one_client() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(other));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(client_key(mapped), IpAddr::V4([10, 0, 0, 1].into()));

        let limiter = RateLimiter::new(1.0);
        let now = Instant::now();
        assert!(limiter.allow(a, now) && limiter.allow(b, now));
        assert!(!limiter.allow(a, now), "the /64 shares one bucket");
        assert!(limiter.allow(other, now));
    }
}

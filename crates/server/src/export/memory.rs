//! Exports of a node without storage (`--in-memory`): what its in-memory
//! views hold, which is bounded anyway (the newest 600 ticks per symbol,
//! 300 × 1 s and 240 × 1 min candles per symbol, the newest 200 posts with
//! their totals). Engagement events are not kept in memory at all (only
//! per-bucket rates), so that export is refused rather than answered empty.
//!
//! Ticks come per symbol (symbols in name order, each oldest first), not in
//! one time order as from storage; each symbol's order is what `pulse
//! replay` needs.

use std::collections::VecDeque;
use std::sync::Arc;

use pulse_core::model::TimestampMs;

use crate::ingest::{Ingest, RECENT_POSTS};
use crate::storage::ExportRows;

use super::params::{ExportRequest, Kind};
use super::stream::{RowSource, StreamError};

/// Rows copied out of the views, handed out a chunk at a time.
pub struct MemorySource {
    ingest: Arc<Ingest>,
    request: ExportRequest,
    /// Symbols whose ticks are still to be copied.
    symbols: VecDeque<String>,
    /// Copied and not yet handed out (one symbol's ticks at most, or all candles or posts).
    pending: Option<ExportRows>,
    loaded: bool,
}

/// `--in-memory` keeps no engagement events.
pub fn keeps(kind: Kind) -> bool {
    kind != Kind::Engagement
}

impl MemorySource {
    pub fn new(ingest: Arc<Ingest>, request: ExportRequest) -> Self {
        let symbols = match (&request.kind, &request.symbol) {
            (Kind::Ticks, Some(symbol)) => VecDeque::from([symbol.clone()]),
            (Kind::Ticks, None) => ingest.symbols().into(),
            _ => VecDeque::new(),
        };
        Self {
            ingest,
            request,
            symbols,
            pending: None,
            loaded: false,
        }
    }

    fn within(&self, ts: TimestampMs) -> bool {
        self.request.from.is_none_or(|from| ts >= from) && self.request.to.is_none_or(|to| ts <= to)
    }

    /// Copies the next batch out of the views; `None` when all were copied.
    fn load(&mut self) -> Option<ExportRows> {
        match self.request.kind {
            Kind::Ticks => {
                let symbol = self.symbols.pop_front()?;
                let (mut ticks, _) = self.ingest.recent_ticks(&symbol);
                ticks.retain(|tick| self.within(tick.ts));
                Some(ExportRows::Ticks(ticks))
            }
            _ if self.loaded => None,
            Kind::Candles => {
                self.loaded = true;
                let symbol = self.request.symbol.as_deref().unwrap_or_default();
                let mut candles = self.ingest.candles(symbol, self.request.interval);
                candles.retain(|candle| self.within(candle.start));
                Some(ExportRows::Candles(candles))
            }
            Kind::Posts => {
                self.loaded = true;
                let mut posts: Vec<_> = self
                    .ingest
                    .recent_posts(RECENT_POSTS, None)
                    .into_iter()
                    .rev()
                    .map(|feed| (feed.post, feed.engagement))
                    .collect();
                posts.retain(|(post, _)| self.within(post.ts));
                Some(ExportRows::Posts(posts))
            }
            Kind::Engagement => None,
        }
    }
}

impl RowSource for MemorySource {
    fn next_chunk(&mut self, limit: usize) -> Result<Option<ExportRows>, StreamError> {
        loop {
            if let Some(pending) = self.pending.as_mut() {
                if !pending.is_empty() {
                    return Ok(Some(take_front(pending, limit.max(1))));
                }
            }
            match self.load() {
                Some(rows) => self.pending = Some(rows),
                None => return Ok(None),
            }
        }
    }
}

/// Removes and returns the first `n` rows.
fn take_front(rows: &mut ExportRows, n: usize) -> ExportRows {
    fn split<T>(items: &mut Vec<T>, n: usize) -> Vec<T> {
        let rest = items.split_off(n.min(items.len()));
        std::mem::replace(items, rest)
    }
    match rows {
        ExportRows::Ticks(items) => ExportRows::Ticks(split(items, n)),
        ExportRows::Candles(items) => ExportRows::Candles(split(items, n)),
        ExportRows::Posts(items) => ExportRows::Posts(split(items, n)),
        ExportRows::Engagement(items) => ExportRows::Engagement(split(items, n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::memory::MemoryBroker;
    use crate::broker::{Broker, BrokerConfig};
    use crate::clock::now_ms;
    use crate::export::params::RawQuery;
    use pulse_core::model::{NewPost, Tick};

    fn request(kind: &str, symbol: Option<&str>, from: Option<i64>) -> ExportRequest {
        ExportRequest::parse(&RawQuery {
            kind: Some(kind.into()),
            symbol: symbol.map(str::to_owned),
            from: from.map(|f| f.to_string()),
            ..RawQuery::default()
        })
        .expect("valid")
    }

    fn drain(mut source: MemorySource, limit: usize) -> Vec<ExportRows> {
        let mut chunks = Vec::new();
        while let Some(rows) = source.next_chunk(limit).expect("reads") {
            assert!(!rows.is_empty() && rows.len() <= limit);
            chunks.push(rows);
        }
        chunks
    }

    #[tokio::test]
    async fn what_the_views_hold_comes_out_per_symbol_in_chunks() {
        let hub: Arc<dyn Broker> = MemoryBroker::new(BrokerConfig::default(), "seed".to_owned());
        let ingest = Arc::new(Ingest::new(hub, None));
        let now = now_ms();
        let t0 = now - 100_000;
        let ticks: Vec<Tick> = (0..30)
            .map(|n| Tick {
                symbol: ["BBB", "AAA"][n % 2].into(),
                price: 10.0 + n as f64,
                volume: 1.0,
                ts: t0 + n as i64 * 1_000,
            })
            .collect();
        ingest.ticks(ticks.clone(), now).await.expect("ticks");
        for text in ["one", "two", "three"] {
            let post = NewPost {
                author: "ann".into(),
                text: text.into(),
                ts: None,
            };
            ingest.posts(vec![post], now).await.expect("post");
        }

        let chunks = drain(
            MemorySource::new(
                Arc::clone(&ingest),
                request("ticks", None, Some(t0 + 4_000)),
            ),
            4,
        );
        let got: Vec<Tick> = chunks
            .into_iter()
            .flat_map(|rows| match rows {
                ExportRows::Ticks(ticks) => ticks,
                other => panic!("{other:?}"),
            })
            .collect();
        let mut want: Vec<Tick> = ticks
            .iter()
            .filter(|t| t.ts >= t0 + 4_000)
            .cloned()
            .collect();
        want.sort_by(|a, b| (&a.symbol, a.ts).cmp(&(&b.symbol, b.ts)));
        assert_eq!(got, want);

        let chunks = drain(
            MemorySource::new(Arc::clone(&ingest), request("candles", Some("AAA"), None)),
            1_000,
        );
        let volume: f64 = chunks
            .iter()
            .flat_map(|rows| match rows {
                ExportRows::Candles(candles) => candles.clone(),
                other => panic!("{other:?}"),
            })
            .map(|candle| candle.volume)
            .sum();
        assert_eq!(volume, 15.0);

        let chunks = drain(
            MemorySource::new(Arc::clone(&ingest), request("posts", None, None)),
            2,
        );
        let texts: Vec<String> = chunks
            .into_iter()
            .flat_map(|rows| match rows {
                ExportRows::Posts(posts) => posts,
                other => panic!("{other:?}"),
            })
            .map(|(post, _)| post.text)
            .collect();
        assert_eq!(texts, ["one", "two", "three"], "oldest first");
        assert!(!keeps(Kind::Engagement));
    }
}

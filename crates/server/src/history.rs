//! History queries shared by the HTTP read API and the dashboard's server
//! functions: from storage when the node has it (more than memory holds),
//! from the in-memory views otherwise.

use pulse_core::model::{Candle, CandleInterval};

use pulse_core::protocol::FeedPost;

use super::ingest::Ingest;
use super::storage::StorageError;

/// Candles returned by one history query at most; a request's range may
/// span at most this many intervals.
pub const MAX_CANDLES: usize = 10_000;

/// Posts newest first, at most `limit`, with ids below `before`.
pub async fn posts(
    ingest: &Ingest,
    limit: usize,
    before: Option<u64>,
) -> Result<Vec<FeedPost>, StorageError> {
    match ingest.storage() {
        Some(storage) => Ok(storage
            .posts(limit, before)
            .await?
            .into_iter()
            .map(|(post, engagement)| FeedPost { post, engagement })
            .collect()),
        None => Ok(ingest.recent_posts(limit, before)),
    }
}

/// Candles of `symbol` starting within `[from, to]` (either open), oldest
/// first; the newest `limit` when the range holds more. 5 min, 1 h and 1 day
/// candles are rolled up from the 1 min ones.
pub async fn candles(
    ingest: &Ingest,
    symbol: &str,
    interval: CandleInterval,
    from: Option<i64>,
    to: Option<i64>,
    limit: usize,
) -> Result<Vec<Candle>, StorageError> {
    match ingest.storage() {
        Some(storage) => {
            storage
                .candles(symbol.to_owned(), interval, from, to, limit)
                .await
        }
        None => {
            let mut candles: Vec<Candle> = ingest
                .candles(symbol, interval)
                .into_iter()
                .filter(|c| from.is_none_or(|f| c.start >= f) && to.is_none_or(|t| c.start <= t))
                .collect();
            let excess = candles.len().saturating_sub(limit);
            candles.drain(..excess);
            Ok(candles)
        }
    }
}

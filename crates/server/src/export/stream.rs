//! The export pipeline: a blocking thread reads chunks from a [`RowSource`],
//! formats them and hands them through a bounded channel to the response
//! body. A client that reads slowly therefore holds at most
//! [`CHANNEL_CHUNKS`] formatted chunks (plus the one being written) on the
//! server, whatever the range; one that disconnects drops the body, the
//! thread's next send fails and the export stops, giving back its slot.
//!
//! A failure after the headers went out (the database failing, the server
//! shutting down) ends the body with an error, so the connection is cut
//! without the final chunk: clients see a truncated transfer (curl: exit
//! 18), never a file that looks complete.

use axum::body::{Body, Bytes};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use crate::storage::{ExportReader, ExportRows, StorageError};

use super::format::{self, FormatError};
use super::params::{Format, Kind};
use super::slots::ExportSlot;

/// Rows read per chunk.
pub const CHUNK_ROWS: usize = 1_000;
/// Formatted chunks waiting for the client, at most.
pub const CHANNEL_CHUNKS: usize = 2;

/// Why an export stopped part way.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// Where an export's rows come from, a chunk at a time, oldest first.
/// Blocking: called on the export's own thread.
pub trait RowSource: Send {
    /// The next at most `limit` rows; `None` when there are no more.
    fn next_chunk(&mut self, limit: usize) -> Result<Option<ExportRows>, StreamError>;
}

impl RowSource for ExportReader {
    fn next_chunk(&mut self, limit: usize) -> Result<Option<ExportRows>, StreamError> {
        ExportReader::next_chunk(self, limit).map_err(StreamError::from)
    }
}

/// Starts the export's thread and returns the body it feeds.
pub fn body(
    mut source: Box<dyn RowSource>,
    kind: Kind,
    format: Format,
    slot: ExportSlot,
    shutdown: watch::Receiver<bool>,
) -> Body {
    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(CHANNEL_CHUNKS);
    tokio::task::spawn_blocking(move || {
        // Held until the thread ends: the slot counts the work, not the response.
        let _slot = slot;
        let preamble = format::preamble(kind, format);
        if !preamble.is_empty() && sender.blocking_send(Ok(preamble.into())).is_err() {
            return;
        }
        loop {
            let chunk = if *shutdown.borrow() {
                Err(StreamError::ShuttingDown)
            } else {
                source.next_chunk(CHUNK_ROWS).and_then(|rows| {
                    rows.map(|rows| format::write(&rows, format).map_err(StreamError::from))
                        .transpose()
                })
            };
            match chunk {
                Ok(Some(bytes)) => {
                    if sender.blocking_send(Ok(bytes.into())).is_err() {
                        tracing::debug!(kind = kind.as_str(), "export client went away");
                        return;
                    }
                }
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(kind = kind.as_str(), %error, "export stopped part way");
                    let _ = sender.blocking_send(Err(std::io::Error::other(error)));
                    return;
                }
            }
        }
    });
    Body::from_stream(ReceiverStream::new(receiver))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::slots::ExportSlots;
    use futures::StreamExt;
    use pulse_core::model::Tick;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// `chunks` chunks of one tick each, counting how many were read.
    struct Counting {
        chunks: usize,
        read: Arc<AtomicUsize>,
        fail_at: Option<usize>,
    }

    impl RowSource for Counting {
        fn next_chunk(&mut self, _limit: usize) -> Result<Option<ExportRows>, StreamError> {
            let n = self.read.fetch_add(1, Ordering::SeqCst);
            if self.fail_at == Some(n) {
                return Err(StorageError::Unavailable("disk gone".into()).into());
            }
            Ok((n < self.chunks).then(|| {
                ExportRows::Ticks(vec![Tick {
                    symbol: "A".into(),
                    price: 1.0 + n as f64,
                    volume: 0.0,
                    ts: n as i64,
                }])
            }))
        }
    }

    fn source(chunks: usize, fail_at: Option<usize>) -> (Box<dyn RowSource>, Arc<AtomicUsize>) {
        let read = Arc::new(AtomicUsize::new(0));
        let source = Counting {
            chunks,
            read: Arc::clone(&read),
            fail_at,
        };
        (Box::new(source), read)
    }

    #[tokio::test]
    async fn a_slow_client_holds_a_few_chunks_and_a_gone_one_stops_the_export() {
        let slots = ExportSlots::new(1);
        let (rows, read) = source(1_000_000, None);
        let (_stop, shutdown) = watch::channel(false);
        let response = body(
            rows,
            Kind::Ticks,
            Format::Csv,
            slots.try_acquire().unwrap(),
            shutdown,
        );
        let mut stream = response.into_data_stream();
        let header = stream.next().await.unwrap().unwrap();
        assert_eq!(&header[..], b"symbol,price,volume,ts\n");
        let first = stream.next().await.unwrap().unwrap();
        assert_eq!(&first[..], b"A,1,0,0\n");
        // Nobody reads: the thread stops once the channel is full.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let ahead = read.load(Ordering::SeqCst);
        assert!(ahead <= CHANNEL_CHUNKS + 2, "{ahead} chunks read ahead");
        assert_eq!(slots.running(), 1);
        drop(stream);
        for _ in 0..100 {
            if slots.running() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(slots.running(), 0, "the slot is given back");
        assert!(read.load(Ordering::SeqCst) <= ahead + 1);
    }

    #[tokio::test]
    async fn a_failure_part_way_ends_the_body_with_an_error() {
        let slots = ExportSlots::new(1);
        let (rows, _) = source(10, Some(3));
        let (_stop, shutdown) = watch::channel(false);
        let failing = body(
            rows,
            Kind::Ticks,
            Format::Ndjson,
            slots.try_acquire().unwrap(),
            shutdown,
        );
        let items: Vec<_> = failing.into_data_stream().collect().await;
        assert_eq!(items.len(), 4, "three chunks, then the error");
        assert!(items[..3].iter().all(Result::is_ok));
        assert!(items[3].is_err());

        let (rows, _) = source(10, None);
        let (stop, shutdown) = watch::channel(false);
        stop.send_replace(true);
        let stopped = body(
            rows,
            Kind::Ticks,
            Format::Ndjson,
            slots.try_acquire().unwrap(),
            shutdown,
        );
        let items: Vec<_> = stopped.into_data_stream().collect().await;
        assert!(
            items.len() == 1 && items[0].is_err(),
            "shutdown cuts the export"
        );
    }
}

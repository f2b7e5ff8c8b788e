//! `publish` over the socket: routing by topic into ingest, answers in arrival order.

use futures::StreamExt;

use pulse_core::model::{Engagement, NewPost, Tick};
use pulse_core::protocol::{ErrorCode, ServerMessage, Topic};

use crate::clock::now_ms;
use crate::ingest::IngestError;

use super::connection::*;

impl Connection {
    /// Applies the data at once and acknowledges it once durable. Publishes
    /// are pipelined: up to [`MAX_PUBLISHES_IN_FLIGHT`] wait for disk at a
    /// time (they share group commits), and acknowledgements go out in order.
    pub(super) fn publish(&mut self, topic: &str, data: serde_json::Value) {
        if !self.can_publish {
            return self.reply_error(
                ErrorCode::Unauthorized,
                "publishing needs the ingest token (Authorization: Bearer or ?token=)".into(),
            );
        }
        let topic = match topic.parse::<Topic>() {
            Ok(topic) => topic,
            Err(error) => return self.reply_error(ErrorCode::UnknownTopic, error.to_string()),
        };
        let now = now_ms();
        let ingest = &self.state.ingest;
        fn parse<T: serde::de::DeserializeOwned>(
            data: serde_json::Value,
            what: &str,
        ) -> Result<T, String> {
            serde_json::from_value(data).map_err(|error| format!("not {what}: {error}"))
        }
        // Posts and engagement fan out to several topics; the ack names the
        // offset the item's own topic had reached once it was applied.
        let position = |topic: &Topic| ingest.broker().position(topic).offset;
        let submitted: Result<Result<PendingPublish, IngestError>, String> = match &topic {
            Topic::Ticks | Topic::SymbolTicks(_) => parse::<Tick>(data, "a tick").map(|tick| {
                ingest.submit_ticks(vec![tick], now).map(|pending| {
                    let durable = pending.durable();
                    Box::pin(async move {
                        durable.await.map(|p| p.first().map_or(0, |p| p.offset))
                    }) as PendingPublish
                })
            }),
            Topic::Posts => parse::<NewPost>(data, "a post").map(|post| {
                ingest.submit_posts(vec![post], now).map(|pending| {
                    let offset = position(&Topic::Posts);
                    let durable = pending.durable();
                    Box::pin(async move { durable.await.map(|_| offset) }) as PendingPublish
                })
            }),
            Topic::Engagement => parse::<Engagement>(data, "an engagement event").map(|event| {
                ingest.submit_engagements(vec![event], now).map(|pending| {
                    let offset = position(&Topic::Engagement);
                    let durable = pending.durable();
                    Box::pin(async move { durable.await.map(|_| offset) }) as PendingPublish
                })
            }),
            other => {
                return self.reply_error(
                    ErrorCode::ReadOnlyTopic,
                    format!("'{other}' is computed by the server and cannot be published to; publish to ticks, posts or engagement"),
                )
            }
        };
        match submitted {
            Ok(Ok(durable)) => {
                let id = self.request_id.clone();
                let ack_topic = match topic {
                    Topic::SymbolTicks(_) => Topic::Ticks.to_string(),
                    other => other.to_string(),
                };
                self.in_flight.push_back(Box::pin(async move {
                    PublishDone {
                        id,
                        topic: ack_topic,
                        result: durable.await,
                    }
                }));
            }
            Err(message) => self.reply_error(ErrorCode::InvalidData, message),
            Ok(Err(error)) => self.reply_ingest_error(error),
        }
    }

    /// Acknowledges a publish once durable (or reports why it is not).
    pub(super) fn finish_publish(&mut self, done: PublishDone) {
        self.request_id = done.id;
        match done.result {
            Ok(offset) => {
                if let Some(id) = self.request_id.clone() {
                    self.reply(&ServerMessage::Published {
                        id,
                        topic: done.topic,
                        offset,
                    });
                }
            }
            Err(error) => self.reply_ingest_error(error),
        }
        self.request_id = None;
    }

    /// Waits (bounded) for every publish in flight and answers each.
    pub(super) async fn finish_in_flight(&mut self) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while !self.in_flight.is_empty() {
            match tokio::time::timeout_at(deadline, self.in_flight.next()).await {
                Ok(Some(done)) => self.finish_publish(done),
                Ok(None) | Err(_) => break,
            }
        }
    }

    pub(super) fn reply_ingest_error(&mut self, error: IngestError) {
        let code = crate::errors::ws_code(error.kind());
        let message = match error {
            IngestError::Invalid { error, .. } => {
                format!("invalid {}: {}", error.field, error.message)
            }
            error => error.to_string(),
        };
        self.reply_error(code, message);
    }
}

/// Publishes of one connection waiting for disk at most; beyond that the
/// connection's frames are not read until some complete (backpressure).
pub(super) const MAX_PUBLISHES_IN_FLIGHT: usize = 4_096;

pub(super) type PendingPublish =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<u64, IngestError>> + Send>>;

/// A publish that finished waiting for disk.
pub(super) struct PublishDone {
    pub(super) id: Option<serde_json::Value>,
    pub(super) topic: String,
    pub(super) result: Result<u64, IngestError>,
}

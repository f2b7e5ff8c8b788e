//! Writes made on a node that does not sequence them: what travels to the
//! leader, and how its answer comes back as the same `IngestError`s a
//! single node gives.

use serde::{Deserialize, Serialize};

use pulse_core::model::{Engagement, NewPost, Tick, TimestampMs, ValidationError};

use super::{Ingest, IngestError, Pending};
use crate::reactions::ReactionError;
use crate::storage::{Answer, RemoteRefusal, StorageError, WriteBatch};

/// Where a write made now goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WritePath {
    /// This node sequences writes (single node, or the cluster's leader).
    Here,
    /// Handed to the leader through the cluster's inbox.
    Leader,
    /// Nowhere right now (no leader yet, the cluster's store unreachable):
    /// nothing is accepted, retrying later is safe.
    Unavailable(String),
}

/// A request forwarded to the leader, validated here first (everything
/// that needs no state), applied there.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", content = "items", rename_all = "snake_case")]
pub enum Forwarded {
    Ticks(Vec<Tick>),
    Posts(Vec<NewPost>),
    Engagement(Vec<Engagement>),
    /// A dashboard click: the leader decides like or unlike.
    React(ReactRequest),
}

/// A click on like or share, decided where reactions are sequenced.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReactRequest {
    pub session: crate::reactions::SessionId,
    pub address: std::net::IpAddr,
    pub post_id: u64,
    pub kind: pulse_core::model::EngagementKind,
}

/// What a click did: the post's counts and whether the reaction is now on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reacted {
    pub totals: pulse_core::model::Counts,
    pub on: bool,
}

/// The multi-node side of ingest, implemented by the cluster.
pub trait Forwarder: Send + Sync + 'static {
    fn write_path(&self) -> WritePath;

    /// Sends `request` to the leader; the answer (the JSON of what a local
    /// call returns) resolves once the leader's commit reached this node.
    fn forward(
        &self,
        request: Forwarded,
        now: TimestampMs,
    ) -> tokio::sync::oneshot::Receiver<Result<serde_json::Value, IngestError>>;
}

/// Who to answer for a forwarded request being applied on the leader.
#[derive(Clone, Debug)]
pub struct AnswerTo {
    pub inbox_id: String,
    pub node: String,
    pub request: u64,
}

impl AnswerTo {
    pub(super) fn answered<T: Serialize>(&self, value: &T) -> Box<Answer> {
        let outcome = serde_json::to_value(value).map_err(|error| RemoteRefusal {
            kind: "unavailable".into(),
            message: format!("the answer did not serialize: {error}"),
            index: None,
            field: None,
            post_id: None,
        });
        self.with(outcome)
    }

    fn with(&self, outcome: Result<serde_json::Value, RemoteRefusal>) -> Box<Answer> {
        Box::new(Answer {
            inbox_id: self.inbox_id.clone(),
            node: self.node.clone(),
            request: self.request,
            outcome,
        })
    }
}

impl Ingest {
    /// On the leader: applies a request from another node's inbox. Its
    /// answer, success or refusal, is committed to the log like data, so
    /// the requester acknowledges exactly what is committed and a new
    /// leader never applies it again.
    pub fn apply_forwarded(&self, to: AnswerTo, request: Forwarded, now: TimestampMs) {
        let outcome = match request {
            Forwarded::Ticks(ticks) => self.submit_ticks_answering(ticks, now, Some(&to)).map(drop),
            Forwarded::Posts(posts) => self.submit_posts_answering(posts, now, Some(&to)).map(drop),
            Forwarded::Engagement(events) => self
                .submit_engagements_answering(events, now, Some(&to), None)
                .map(drop),
            Forwarded::React(request) => self.apply_reaction(&to, &request, now),
        };
        if let Err(error) = outcome {
            self.refuse_forwarded(to, &error);
        }
    }

    /// A forwarded click, decided here. The leader cannot wait for the
    /// commit (it answers through the log), so the reaction is remembered
    /// as soon as the write is queued; a write that then fails leaves it
    /// remembered without its count (a later click undoes it).
    fn apply_reaction(
        &self,
        to: &AnswerTo,
        request: &ReactRequest,
        now: TimestampMs,
    ) -> Result<(), IngestError> {
        let toggle = self.reactions.toggle(
            request.session,
            request.address,
            request.post_id,
            request.kind,
        )?;
        let event = Engagement {
            post_id: request.post_id,
            kind: request.kind,
            delta: toggle.delta(),
            ts: now,
        };
        let pending =
            self.submit_engagements_answering(vec![event], now, Some(to), Some(toggle.change()))?;
        drop(pending);
        toggle.commit();
        Ok(())
    }

    /// On a follower: hands a click to the leader.
    pub fn forward_reaction(
        &self,
        request: ReactRequest,
        now: TimestampMs,
    ) -> Result<Pending<Reacted>, IngestError> {
        match self.forwarded(|| Forwarded::React(request), now) {
            Some(pending) => pending,
            None => Err(IngestError::Storage(StorageError::Unavailable(
                "this node sequences writes itself; react locally".into(),
            ))),
        }
    }

    /// Commits a refusal of a forwarded request (with the inbox progress).
    pub fn refuse_forwarded(&self, to: AnswerTo, error: &IngestError) {
        let batch = WriteBatch {
            replay: crate::storage::Replay {
                answers: Some(to.with(Err(refusal_of(error)))),
                ..Default::default()
            },
            ..WriteBatch::default()
        };
        let _state = self.state();
        drop(self.submit(batch));
    }

    /// On the leader: the cluster-wide presence count, committed to the
    /// log like any event so every node serves it at the same offset.
    pub fn publish_presence(
        &self,
        presence: &pulse_core::model::Presence,
    ) -> Result<(), IngestError> {
        let _state = self.state();
        self.set_cluster_presence(*presence);
        let event =
            self.broker
                .prepare(&pulse_core::protocol::Topic::Presence, presence, None, None)?;
        drop(self.submit(WriteBatch {
            events: vec![event],
            ..WriteBatch::default()
        }));
        Ok(())
    }
}

/// An error as it travels to the requester.
pub fn refusal_of(error: &IngestError) -> RemoteRefusal {
    let (kind, index, field, post_id) = match error {
        IngestError::Invalid { index, error } => {
            ("invalid", Some(*index), Some(error.field.to_owned()), None)
        }
        IngestError::UnknownPost { index, post_id } => {
            ("unknown_post", Some(*index), None, Some(*post_id))
        }
        IngestError::Reaction(reaction) => (reaction_code(reaction), None, None, None),
        IngestError::Storage(_) | IngestError::Broker(_) => ("unavailable", None, None, None),
    };
    let message = match error {
        IngestError::Invalid { error, .. } => error.message.clone(),
        other => other.to_string(),
    };
    RemoteRefusal {
        kind: kind.into(),
        message,
        index,
        field,
        post_id,
    }
}

/// The refusal back as the error a local call gives.
pub fn error_of(refusal: RemoteRefusal) -> IngestError {
    match (refusal.kind.as_str(), refusal.index, refusal.post_id) {
        ("invalid", Some(index), _) => IngestError::Invalid {
            index,
            error: ValidationError {
                field: static_field(refusal.field.as_deref().unwrap_or("")),
                message: refusal.message,
            },
        },
        ("unknown_post", Some(index), Some(post_id)) => IngestError::UnknownPost { index, post_id },
        ("reaction_in_flight", _, _) => IngestError::Reaction(ReactionError::InFlight),
        ("reaction_not_a_toggle", _, _) => IngestError::Reaction(ReactionError::NotAToggle),
        ("reaction_address_limit", _, _) => {
            // "at most N people on one network can <verb> the same post"
            let limit = refusal
                .message
                .split_whitespace()
                .find_map(|word| word.parse().ok())
                .unwrap_or(0);
            let verb = if refusal.message.contains(" share ") {
                "share"
            } else {
                "like"
            };
            IngestError::Reaction(ReactionError::AddressLimit(limit, verb))
        }
        _ => IngestError::Storage(StorageError::Unavailable(format!(
            "the leader refused: {}",
            refusal.message
        ))),
    }
}

fn reaction_code(error: &ReactionError) -> &'static str {
    match error {
        ReactionError::InFlight => "reaction_in_flight",
        ReactionError::NotAToggle => "reaction_not_a_toggle",
        ReactionError::AddressLimit(..) => "reaction_address_limit",
    }
}

/// Field names are `&'static str` in [`ValidationError`]; every field an
/// ingest item has is listed, anything else is reported as `item`.
fn static_field(name: &str) -> &'static str {
    const FIELDS: &[&str] = &[
        "symbol", "price", "volume", "ts", "author", "text", "post_id", "kind", "delta",
    ];
    FIELDS
        .iter()
        .find(|field| **field == name)
        .copied()
        .unwrap_or("item")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_come_back_as_the_errors_a_local_call_gives() {
        let invalid = IngestError::Invalid {
            index: 3,
            error: ValidationError {
                field: "price",
                message: "must be positive".into(),
            },
        };
        let back = error_of(refusal_of(&invalid));
        assert_eq!(back.to_string(), invalid.to_string());
        assert_eq!(back.kind(), invalid.kind());
        let unknown = IngestError::UnknownPost {
            index: 1,
            post_id: 99,
        };
        let back = error_of(refusal_of(&unknown));
        assert_eq!(back.to_string(), unknown.to_string());
        for reaction in [
            ReactionError::InFlight,
            ReactionError::NotAToggle,
            ReactionError::AddressLimit(8, "share"),
        ] {
            let error = IngestError::Reaction(reaction);
            let back = error_of(refusal_of(&error));
            assert_eq!(back.to_string(), error.to_string());
            assert_eq!(back.kind(), error.kind());
        }
        let storage = IngestError::Storage(StorageError::Unavailable("write queue full".into()));
        let back = error_of(refusal_of(&storage));
        assert_eq!(back.kind(), storage.kind());
        assert!(back.to_string().contains("write queue full"));
    }

    #[test]
    fn forwarded_requests_round_trip_as_json() {
        let request = Forwarded::Posts(vec![NewPost {
            author: "ann".into(),
            text: "$ACME up".into(),
            ts: Some(5),
        }]);
        let json = serde_json::to_string(&request).expect("serializes");
        assert!(json.starts_with(r#"{"kind":"posts","items":["#), "{json}");
        let back: Forwarded = serde_json::from_str(&json).expect("parses");
        assert!(matches!(back, Forwarded::Posts(posts) if posts[0].text == "$ACME up"));
    }
}

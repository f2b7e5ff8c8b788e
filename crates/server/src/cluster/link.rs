//! Connections to Redis, the keys Pulse uses there and its scripts.
//!
//! Every key carries the hash tag `{p}`, so all of them live in one slot
//! (a Redis Cluster works as one shard would). Each thread that talks to
//! Redis owns its connection, with timeouts longer than any blocking read
//! it makes, so a wedged link surfaces as an error within seconds.

use std::time::Duration;

use redis::{Client, Connection, RedisError, Script, Value};

/// Key names, with the prefix of one Pulse cluster.
pub struct Keys {
    /// Hash: `epoch`, `g` (last commit group), `in` (last inbox id
    /// answered), `o:<topic epoch>` (last offset of each topic).
    pub meta: String,
    /// The sequencer lease: `<node>:<nonce>` of the leader, with a TTL.
    pub leader: String,
    /// Stream of commit groups, entry id `<g>-0`.
    pub bus: String,
    /// Stream of writes forwarded to the leader.
    pub inbox: String,
    /// Zset of nodes scored by their last heartbeat (ms).
    pub nodes: String,
}

impl Keys {
    pub fn new() -> Self {
        let key = |name: &str| format!("pulse:{{p}}:{name}");
        Self {
            meta: key("meta"),
            leader: key("leader"),
            bus: key("bus"),
            inbox: key("in"),
            nodes: key("nodes"),
        }
    }

    /// Set of the dashboard sessions connected to `node`.
    pub fn sessions(&self, node: &str) -> String {
        format!("pulse:{{p}}:pres:{node}")
    }

    /// Number of WebSocket connections `node` holds.
    pub fn connections(&self, node: &str) -> String {
        format!("pulse:{{p}}:conns:{node}")
    }
}

impl Default for Keys {
    fn default() -> Self {
        Self::new()
    }
}

/// The scripts, loaded once per process (EVALSHA, falling back to EVAL).
pub struct Scripts {
    pub commit: Script,
    pub epoch: Script,
    pub renew: Script,
    pub release: Script,
}

impl Scripts {
    pub fn new() -> Self {
        Self {
            commit: Script::new(include_str!("commit.lua")),
            epoch: Script::new(include_str!("epoch.lua")),
            renew: Script::new(include_str!("renew.lua")),
            release: Script::new(include_str!("release.lua")),
        }
    }
}

impl Default for Scripts {
    fn default() -> Self {
        Self::new()
    }
}

/// Opens a connection whose reads and writes give up after `timeout`.
pub fn connect(client: &Client, timeout: Duration) -> Result<Connection, RedisError> {
    let conn = client.get_connection_with_timeout(timeout)?;
    conn.set_read_timeout(Some(timeout))?;
    conn.set_write_timeout(Some(timeout))?;
    Ok(conn)
}

/// A reply's bytes as text (bulk and simple strings); `None` otherwise.
pub fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Entries of an `XREAD`/`XRANGE` reply: `(id, field d)` in order.
/// Accepts both the RESP2 array form and the RESP3 map form.
pub fn stream_entries(reply: &Value) -> Vec<(String, String)> {
    fn entries(list: &Value, out: &mut Vec<(String, String)>) {
        let Value::Array(items) = list else { return };
        for item in items {
            let Value::Array(parts) = item else { continue };
            let (Some(id), Some(Value::Array(fields))) =
                (parts.first().and_then(text), parts.get(1))
            else {
                continue;
            };
            let mut data = None;
            for pair in fields.chunks(2) {
                if let [name, value] = pair {
                    if text(name).as_deref() == Some("d") || text(name).as_deref() == Some("r") {
                        data = text(value);
                    }
                }
            }
            if let Some(data) = data {
                out.push((id, data));
            }
        }
    }
    let mut out = Vec::new();
    match reply {
        // XRANGE: the entries themselves.
        Value::Array(items) if items.first().is_some_and(|first| {
            matches!(first, Value::Array(parts) if parts.first().and_then(text).is_some_and(|id| id.contains('-')))
        }) => entries(reply, &mut out),
        // XREAD (RESP2): [[stream, entries], ...]
        Value::Array(streams) => {
            for stream in streams {
                if let Value::Array(parts) = stream {
                    if let Some(list) = parts.get(1) {
                        entries(list, &mut out);
                    }
                }
            }
        }
        // XREAD (RESP3): {stream: entries}
        Value::Map(streams) => {
            for (_, list) in streams {
                entries(list, &mut out);
            }
        }
        _ => {}
    }
    out
}

/// The `g` of a bus entry id `<g>-0`.
pub fn group_of(id: &str) -> Option<u64> {
    id.split('-').next()?.parse().ok()
}

/// The millisecond part of a stream id (`<ms>-<seq>`).
pub fn id_ms(id: &str) -> Option<i64> {
    id.split('-').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    fn entry(id: &str, data: &str) -> Value {
        Value::Array(vec![bulk(id), Value::Array(vec![bulk("d"), bulk(data)])])
    }

    #[test]
    fn stream_replies_are_read_in_both_protocols_and_from_xrange() {
        let list = Value::Array(vec![entry("1-0", "a"), entry("2-0", "b")]);
        let resp2 = Value::Array(vec![Value::Array(vec![bulk("bus"), list.clone()])]);
        let resp3 = Value::Map(vec![(bulk("bus"), list.clone())]);
        let expected = vec![
            ("1-0".to_owned(), "a".to_owned()),
            ("2-0".to_owned(), "b".to_owned()),
        ];
        assert_eq!(stream_entries(&resp2), expected);
        assert_eq!(stream_entries(&resp3), expected);
        assert_eq!(stream_entries(&list), expected);
        assert!(stream_entries(&Value::Nil).is_empty());
    }

    #[test]
    fn ids_split_into_their_parts() {
        assert_eq!(group_of("42-0"), Some(42));
        assert_eq!(id_ms("1700000000000-3"), Some(1_700_000_000_000));
        assert_eq!(group_of("x"), None);
    }

    #[test]
    fn every_key_shares_one_hash_slot() {
        let keys = Keys::new();
        for key in [
            &keys.meta,
            &keys.leader,
            &keys.bus,
            &keys.inbox,
            &keys.nodes,
            &keys.sessions("n1"),
            &keys.connections("n1"),
        ] {
            assert!(key.starts_with("pulse:{p}:"), "{key}");
        }
    }
}

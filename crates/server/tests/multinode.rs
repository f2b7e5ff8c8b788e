//! Several real `pulse` processes over one real `redis-server` (Debian's,
//! started here on a free loopback port), so `kill -9` is real: ordering,
//! failover, Redis failures, recovery on another node and presence.
//!
//! Without `redis-server` on PATH the tests say so and pass, except under
//! `CI=true`, where `scripts/test.sh` has installed it and its absence is a
//! failure.

// The scenarios hold the SERIAL guard across awaits on purpose: one at a time.
#![allow(clippy::await_holding_lock)]

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use pulse_server::clock::now_ms;
use serde_json::{json, Value};

/// The scenarios run one at a time: each starts Redis and up to three nodes
/// on a two-core machine.
static SERIAL: Mutex<()> = Mutex::new(());

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn have_redis() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "redis-server is missing under CI (scripts/test.sh installs it)"
        );
        eprintln!("skipped: redis-server is not installed");
    }
    found
}

/// What every scenario starts with: its turn, a directory and a Redis
/// (`aof`: with its append-only file); `None` without `redis-server`.
fn scenario(name: &str, aof: bool) -> Option<(std::sync::MutexGuard<'static, ()>, PathBuf, Redis)> {
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !have_redis() {
        return None;
    }
    let dir = temp_dir(name);
    let redis = Redis::start(&dir, aof);
    Some((serial, dir, redis))
}

struct Redis {
    port: u16,
    dir: PathBuf,
    aof: bool,
    child: Child,
}

impl Redis {
    fn start(dir: &Path, aof: bool) -> Self {
        let port = free_port();
        let child = Self::spawn(port, dir, aof);
        let redis = Self {
            port,
            dir: dir.to_owned(),
            aof,
            child,
        };
        redis.wait_up();
        redis
    }

    fn spawn(port: u16, dir: &Path, aof: bool) -> Child {
        Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
            ])
            .args(["--appendonly", if aof { "yes" } else { "no" }])
            .args([
                "--appendfsync",
                "always",
                "--maxmemory-policy",
                "noeviction",
            ])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts")
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .expect("url")
            .get_connection_with_timeout(Duration::from_secs(2))
            .expect("connects")
    }

    fn wait_up(&self) {
        for _ in 0..100 {
            if let Ok(client) = redis::Client::open(self.url()) {
                if let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_millis(200))
                {
                    if redis::cmd("PING").query::<String>(&mut conn).is_ok() {
                        return;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not come up");
    }

    /// A point-in-time snapshot (`SAVE`), kept aside.
    fn save_snapshot(&self) -> Vec<u8> {
        let _: String = redis::cmd("SAVE").query(&mut self.conn()).expect("SAVE");
        std::fs::read(self.dir.join("dump.rdb")).expect("dump.rdb")
    }

    /// `kill -9`, then a restart from `snapshot`: Redis goes back in time.
    fn crash_and_restore(&mut self, snapshot: &[u8]) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::write(self.dir.join("dump.rdb"), snapshot).expect("restored dump.rdb");
        self.child = Self::spawn(self.port, &self.dir, self.aof);
        self.wait_up();
    }

    /// `kill -9`, then the same server on the same port and directory
    /// (`empty`: without its append-only file).
    fn crash_and_restart(&mut self, empty: bool) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if empty {
            let _ = std::fs::remove_dir_all(self.dir.join("appendonlydir"));
        }
        self.child = Self::spawn(self.port, &self.dir, self.aof);
        self.wait_up();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Node {
    id: String,
    addr: SocketAddr,
    db: PathBuf,
    redis_url: String,
    /// Per-client ingest rate (`PULSE_INGEST_RATE`; 0 = unlimited).
    ingest_rate: f64,
    child: Option<Child>,
}

impl Node {
    fn start(id: &str, redis: &Redis, dir: &Path) -> Self {
        Self::start_with_rate(id, redis, dir, 0.0)
    }

    /// [`Node::start`] with a per-client ingest rate (0 = unlimited).
    fn start_with_rate(id: &str, redis: &Redis, dir: &Path, ingest_rate: f64) -> Self {
        let mut node = Self {
            id: id.to_owned(),
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            db: dir.join(format!("{id}.db")),
            redis_url: redis.url(),
            ingest_rate,
            child: None,
        };
        node.spawn();
        node
    }

    fn spawn(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_pulse"))
            .args(["--addr", &self.addr.to_string(), "--no-simulator"])
            .args(["--redis", &self.redis_url, "--node-id", &self.id])
            .args(["--sync", "normal"])
            .arg("--db")
            .arg(&self.db)
            .env("RUST_LOG", "warn")
            .env("PULSE_INGEST_RATE", self.ingest_rate.to_string())
            // POST /api/debug/forget-idle-symbols (the sweep waits a day).
            .env("PULSE_TEST_HOOKS", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("pulse starts");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if tokio::net::TcpStream::connect(self.addr).await.is_ok()
                && http_to(self.addr, "GET", "/readyz", &[], b"").await.0 == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("node {} did not become ready", self.id);
    }

    async fn role(&self) -> String {
        let (_, text) = http_to(self.addr, "GET", "/metrics", &[], b"").await;
        let text = text.as_str().unwrap_or_default().to_owned();
        text.lines()
            .find(|line| line.starts_with("pulse_cluster_role{") && line.ends_with(" 1"))
            .and_then(|line| line.split('"').nth(1).map(str::to_owned))
            .unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn cluster(redis: &Redis, dir: &Path, n: usize) -> Vec<Node> {
    let mut nodes = Vec::new();
    for i in 0..n {
        let node = Node::start(&format!("n{}", i + 1), redis, dir);
        node.ready().await;
        nodes.push(node);
    }
    wait_for_leader(&nodes).await;
    nodes
}

/// Polls `attempt` every `every` until it gives `Some`, for at most `within`.
async fn eventually<T, F, Fut>(within: Duration, every: Duration, mut attempt: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = attempt().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

/// Index of the node that leads, once one does.
async fn wait_for_leader(nodes: &[Node]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        for (index, node) in nodes.iter().enumerate() {
            if node.child.is_some() && node.role().await == "leader" {
                return index;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no node became leader");
}

async fn post_tick(addr: SocketAddr, symbol: &str, volume: u64) -> (u16, Value) {
    let body = json!({"symbol": symbol, "price": 100.0 + volume as f64 / 100.0,
        "volume": volume, "ts": now_ms()});
    http_to(
        addr,
        "POST",
        "/api/ticks",
        &[JSON],
        body.to_string().as_bytes(),
    )
    .await
}

async fn ws(addr: SocketAddr, session: &str) -> Client {
    let url = format!("ws://{addr}/ws?session={session}");
    let (client, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("ws connects");
    client
}

/// Subscribes to `topic` (with `since`) and returns the `subscribed` reply.
async fn subscribe(client: &mut Client, topic: &str, since: Option<Value>) -> Value {
    let mut frame = json!({"op": "subscribe", "topics": [topic]});
    if let Some(since) = since {
        frame["since"] = json!({ topic: since });
    }
    send(client, &frame.to_string()).await;
    recv_until(client, |f| f["op"] == "subscribed").await
}

/// Events of the topic until `n` have arrived (backlog frames included):
/// `(offset, data)`.
async fn collect(client: &mut Client, n: usize, within: Duration) -> Vec<(u64, Value)> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while seen.len() < n {
        let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, client.next()).await else {
            break;
        };
        let Ok(text) = message.to_text() else {
            continue;
        };
        let Ok(frame) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        let list = match frame["op"].as_str() {
            Some("backlog") => frame["events"].as_array().cloned().unwrap_or_default(),
            _ => events(&frame),
        };
        for event in list {
            if let Some(offset) = event["offset"].as_u64() {
                seen.push((offset, event["data"].clone()));
            }
        }
    }
    seen
}

#[tokio::test]
async fn writes_through_every_node_reach_every_node_identically() {
    let Some((_serial, dir, redis)) = scenario("order", true) else {
        return;
    };
    let nodes = cluster(&redis, &dir, 3).await;
    let mut watchers = Vec::new();
    for node in &nodes {
        let mut client = ws(node.addr, &format!("w-{}", node.id)).await;
        let subscribed = subscribe(&mut client, "ticks", None).await;
        watchers.push((client, subscribed["epoch"].clone()));
    }
    let epoch = watchers[0].1.clone();
    assert!(
        watchers.iter().all(|(_, e)| *e == epoch),
        "one epoch everywhere"
    );

    let per_node = 20;
    let mut acked = Vec::new();
    for i in 0..per_node * nodes.len() {
        let node = &nodes[i % nodes.len()];
        let (status, reply) = post_tick(node.addr, "ACME", i as u64 + 1).await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["epoch"], epoch, "{reply}");
        acked.push(reply["offset"].as_u64().expect("offset"));
    }
    assert_eq!(
        acked,
        (1..=acked.len() as u64).collect::<Vec<_>>(),
        "offsets in send order"
    );

    // WebSocket producers on every node, 10 publishes each in flight at
    // once: each producer's order is kept, offsets interleave.
    let mut producers = Vec::new();
    for node in &nodes {
        let mut producer = ws(node.addr, &format!("p-{}", node.id)).await;
        for i in 0..10u64 {
            let frame = json!({"op": "publish", "topic": "ticks", "id": i,
                "data": {"symbol": "ACME", "price": 50.0 + i as f64, "volume": 1000 + i, "ts": now_ms()}});
            send(&mut producer, &frame.to_string()).await;
        }
        producers.push(producer);
    }
    for (node, producer) in nodes.iter().zip(&mut producers) {
        let mut offsets = Vec::new();
        while offsets.len() < 10 {
            let reply = recv_within(producer, Duration::from_secs(20)).await;
            assert_eq!(reply["op"], "published", "{}: {reply}", node.id);
            offsets.push(reply["offset"].as_u64().expect("offset"));
        }
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "{}: in send order {offsets:?}",
            node.id
        );
        acked.extend(offsets);
    }
    acked.sort_unstable();
    assert_eq!(
        acked,
        (1..=acked.len() as u64).collect::<Vec<_>>(),
        "no gap, no repeat"
    );

    let mut seen = Vec::new();
    for (client, _) in &mut watchers {
        seen.push(collect(client, acked.len(), Duration::from_secs(20)).await);
    }
    for (node, events) in nodes.iter().zip(&seen) {
        let offsets: Vec<u64> = events.iter().map(|(o, _)| *o).collect();
        assert_eq!(offsets, acked, "node {}: no gap, no repeat", node.id);
        assert_eq!(
            events, &seen[0],
            "node {} delivers identical bodies",
            node.id
        );
    }

    // Posts get one id sequence, whichever node takes them.
    let mut ids = Vec::new();
    for node in &nodes {
        let body = json!({"author": node.id, "text": "$ACME looks great"});
        let (status, post) = http_to(
            node.addr,
            "POST",
            "/api/posts",
            &[JSON],
            body.to_string().as_bytes(),
        )
        .await;
        assert_eq!(status, 200, "{post}");
        ids.push(post["id"].as_u64().expect("id"));
    }
    assert_eq!(ids, [1, 2, 3]);
    // A write acknowledged by a node is readable on that node at once.
    for node in &nodes {
        let (_, snapshot) = http_to(node.addr, "GET", "/api/snapshot", &[], b"").await;
        let posts: Vec<u64> = snapshot["posts"]
            .as_array()
            .expect("posts")
            .iter()
            .filter_map(|p| p["id"].as_u64())
            .collect();
        assert!(
            posts.contains(&3) || node.id != "n3",
            "{} has post 3: {posts:?}",
            node.id
        );
    }
    // Every node's read model agrees: the followers replayed the leader's
    // engines, not just its events.
    let mut views = Vec::new();
    for node in &nodes {
        let (_, snapshot) = http_to(node.addr, "GET", "/api/snapshot", &[], b"").await;
        let view: Vec<Value> = [
            "symbols",
            "posts",
            "sentiment",
            "sentiment_by_symbol",
            "positions",
        ]
        .iter()
        .map(|field| snapshot[*field].clone())
        .collect();
        views.push(view);
    }
    for (node, view) in nodes.iter().zip(&views) {
        assert_eq!(view, &views[0], "node {} serves the leader's view", node.id);
    }
    // A refusal comes back from the leader as the same error a single node gives.
    let (status, error) = post_tick(nodes[1].addr, "ACME", 0).await;
    let (status, error) = if status == 200 {
        // volume 0 is allowed; a negative price is not
        let body = json!({"symbol": "ACME", "price": -1.0, "volume": 1, "ts": now_ms()});
        http_to(
            nodes[1].addr,
            "POST",
            "/api/ticks",
            &[JSON],
            body.to_string().as_bytes(),
        )
        .await
    } else {
        (status, error)
    };
    assert_eq!(status, 400, "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn killing_a_follower_then_the_leader_loses_no_acknowledged_tick() {
    let Some((_serial, dir, redis)) = scenario("failover", true) else {
        return;
    };
    let mut nodes = cluster(&redis, &dir, 3).await;
    let leader = wait_for_leader(&nodes).await;
    let follower = (leader + 1) % 3;
    let survivor = (leader + 2) % 3;

    let mut producer = ws(nodes[survivor].addr, "producer").await;
    let mut acked: Vec<u64> = Vec::new();
    let mut refused = 0;
    let mut longest_gap = Duration::ZERO;
    let mut last_ack = Instant::now();
    let mut volume = 0;
    let started = Instant::now();
    let mut killed_follower = false;
    let mut killed_leader = false;
    while started.elapsed() < Duration::from_secs(16) {
        if !killed_follower && started.elapsed() > Duration::from_secs(2) {
            nodes[follower].kill();
            killed_follower = true;
        }
        if !killed_leader && started.elapsed() > Duration::from_secs(5) {
            nodes[leader].kill();
            killed_leader = true;
        }
        volume += 1;
        // A steady WebSocket producer on the node that stays up.
        let frame = json!({"op": "publish", "topic": "ticks", "id": volume,
            "data": {"symbol": "ACME", "price": 100.0, "volume": volume, "ts": now_ms()}});
        send(&mut producer, &frame.to_string()).await;
        // A forwarded publish waits out the takeover (a few seconds).
        let reply = loop {
            let frame = recv_within(&mut producer, Duration::from_secs(15)).await;
            if frame["id"] == volume {
                break frame;
            }
        };
        if reply["op"] == "published" {
            acked.push(reply["offset"].as_u64().expect("offset"));
            longest_gap = longest_gap.max(last_ack.elapsed());
            last_ack = Instant::now();
        } else {
            assert_eq!(reply["op"], "error", "{reply}");
            refused += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "failover: {} acked, {refused} refused, longest pause between acks {longest_gap:?}",
        acked.len()
    );
    assert!(
        longest_gap < Duration::from_secs(8),
        "takeover took {longest_gap:?}"
    );
    assert_eq!(nodes[survivor].role().await, "leader");
    let unique: BTreeSet<u64> = acked.iter().copied().collect();
    assert_eq!(unique.len(), acked.len(), "no offset acknowledged twice");

    // Every acknowledged tick is in the survivor's history, once.
    let mut client = ws(nodes[survivor].addr, "check").await;
    let first = json!({"epoch": format!("{}", epoch_of(&nodes[survivor]).await), "offset": 0});
    let subscribed = subscribe(&mut client, "ticks", Some(first)).await;
    assert_eq!(subscribed["recovered"], true, "{subscribed}");
    let history = collect(
        &mut client,
        *acked.last().expect("acks") as usize,
        Duration::from_secs(20),
    )
    .await;
    let offsets: Vec<u64> = history.iter().map(|(o, _)| *o).collect();
    assert_eq!(
        offsets,
        (1..=*acked.last().expect("acks")).collect::<Vec<_>>(),
        "offsets continue across both kills, no gap or repeat"
    );
    for offset in &acked {
        assert!(offsets.contains(offset));
    }

    // The killed nodes come back, follow on from their archives and agree.
    nodes[leader].spawn();
    nodes[follower].spawn();
    nodes[leader].ready().await;
    nodes[follower].ready().await;
    let (status, reply) = post_tick(nodes[follower].addr, "ACME", 999_999).await;
    assert_eq!(status, 200, "{reply}");
    let next = reply["offset"].as_u64().expect("offset");
    assert_eq!(next, acked.last().expect("acks") + 1, "offsets continue");
    for node in &nodes {
        let mut client = ws(node.addr, &format!("after-{}", node.id)).await;
        let since = json!({"epoch": subscribed["epoch"], "offset": next - 1});
        let again = subscribe(&mut client, "ticks", Some(since)).await;
        assert_eq!(again["recovered"], true, "{}: {again}", node.id);
        let tail = collect(&mut client, 1, Duration::from_secs(10)).await;
        assert_eq!(tail.first().map(|(o, _)| *o), Some(next), "{}", node.id);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

async fn epoch_of(node: &Node) -> String {
    let (_, snapshot) = http_to(node.addr, "GET", "/api/snapshot", &[], b"").await;
    snapshot["positions"]["ticks"]["epoch"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no ticks position in the snapshot: {snapshot}"))
}

#[tokio::test]
async fn redis_failures_lose_nothing_and_an_emptied_redis_is_a_new_epoch() {
    let Some((_serial, dir, mut redis)) = scenario("redis", true) else {
        return;
    };
    let nodes = cluster(&redis, &dir, 2).await;
    let mut acked = Vec::new();
    let publish = |acked: &mut Vec<u64>, reply: (u16, Value)| {
        if reply.0 == 200 {
            acked.push(reply.1["offset"].as_u64().expect("offset"));
        } else {
            assert_eq!(reply.0, 503, "{}", reply.1);
        }
    };
    for i in 0..10 {
        publish(
            &mut acked,
            post_tick(nodes[i % 2].addr, "ACME", i as u64 + 1).await,
        );
    }
    let epoch = epoch_of(&nodes[0]).await;

    // Every client connection cut: nodes reconnect and go on.
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .query(&mut redis.conn())
        .expect("client kill");
    assert!(killed >= 2, "the nodes' connections were cut ({killed})");
    // Redis stalled for 3 s.
    let stall = {
        let url = redis.url();
        std::thread::spawn(move || {
            let mut conn = redis::Client::open(url)
                .expect("url")
                .get_connection_with_timeout(Duration::from_secs(2))
                .expect("connects");
            conn.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            let _: Result<String, _> = redis::cmd("DEBUG").arg("SLEEP").arg(3).query(&mut conn);
        })
    };
    for i in 0..40 {
        publish(
            &mut acked,
            post_tick(nodes[i % 2].addr, "ACME", 100 + i as u64).await,
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stall.join();
    // kill -9 and a restart from the append-only file (appendfsync always).
    redis.crash_and_restart(false);
    for node in &nodes {
        node.ready().await;
    }
    wait_for_leader(&nodes).await;
    let writer = &nodes[1];
    let after = eventually(
        Duration::from_secs(20),
        Duration::from_millis(200),
        move || async move {
            let (status, reply) = post_tick(writer.addr, "ACME", 7_777).await;
            (status == 200).then_some(reply)
        },
    )
    .await
    .expect("writes resume after the restart");
    acked.push(after["offset"].as_u64().expect("offset"));
    assert_eq!(after["epoch"], epoch.as_str());
    assert_eq!(
        epoch_of(&nodes[0]).await,
        epoch,
        "same epoch after an AOF restart"
    );
    let unique: BTreeSet<u64> = acked.iter().copied().collect();
    assert_eq!(unique.len(), acked.len(), "no offset acknowledged twice");
    for node in &nodes {
        let mut client = ws(node.addr, &format!("r-{}", node.id)).await;
        let subscribed = subscribe(
            &mut client,
            "ticks",
            Some(json!({"epoch": epoch, "offset": 0})),
        )
        .await;
        assert_eq!(subscribed["recovered"], true, "{}: {subscribed}", node.id);
        let last = *acked.iter().max().expect("acks");
        let history = collect(&mut client, last as usize, Duration::from_secs(20)).await;
        let offsets: BTreeSet<u64> = history.iter().map(|(o, _)| *o).collect();
        assert_eq!(offsets.len(), history.len(), "{}: no repeats", node.id);
        for offset in &acked {
            assert!(
                offsets.contains(offset),
                "{}: acknowledged {offset} is there",
                node.id
            );
        }
    }

    // Redis restarted empty: the history clients recover from is gone.
    let mut connected = ws(nodes[1].addr, "connected-through-it").await;
    subscribe(&mut connected, "ticks", None).await;
    redis.crash_and_restart(true);
    let (watched, old) = (&nodes[0], &epoch);
    let fresh = eventually(
        Duration::from_secs(30),
        Duration::from_millis(300),
        move || async move {
            if http_to(watched.addr, "GET", "/readyz", &[], b"").await.0 != 200 {
                return None;
            }
            Some(epoch_of(watched).await).filter(|now| now != old)
        },
    )
    .await
    .expect("a new epoch once Redis lost its data");
    wait_for_leader(&nodes).await;
    let mut client = ws(nodes[1].addr, "stale").await;
    let old = json!({"epoch": epoch, "offset": acked.iter().max()});
    let subscribed = subscribe(&mut client, "ticks", Some(old)).await;
    assert_eq!(subscribed["recovered"], false, "{subscribed}");
    assert_eq!(
        epoch_of(&nodes[1]).await,
        fresh,
        "both nodes adopt the new epoch"
    );
    // A client that stayed connected through it is told, not left hanging.
    let told = recv_until(&mut connected, |f| f["op"] == "subscribed").await;
    assert_eq!(told["recovered"], false, "{told}");
    assert_eq!(told["epoch"], fresh.as_str(), "{told}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn clients_resume_on_another_node_and_presence_counts_each_session_once() {
    let Some((_serial, dir, redis)) = scenario("resume", true) else {
        return;
    };
    let mut nodes = cluster(&redis, &dir, 2).await;
    for i in 0..5 {
        assert_eq!(post_tick(nodes[0].addr, "ACME", i + 1).await.0, 200);
    }
    // A snapshot on node 1, then a subscribe with its positions on node 2.
    let (_, snapshot) = http_to(nodes[0].addr, "GET", "/api/snapshot", &[], b"").await;
    let position = snapshot["positions"]["ticks"].clone();
    for i in 0..7 {
        assert_eq!(post_tick(nodes[1].addr, "ACME", 10 + i).await.0, 200);
    }
    let mut client = ws(nodes[1].addr, "mover").await;
    let subscribed = subscribe(&mut client, "ticks", Some(position.clone())).await;
    assert_eq!(subscribed["recovered"], true, "{subscribed}");
    let backlog = collect(&mut client, 7, Duration::from_secs(10)).await;
    let from = position["offset"].as_u64().expect("offset");
    assert_eq!(
        backlog.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        (from + 1..=from + 7).collect::<Vec<_>>(),
        "exactly what was missed"
    );
    drop(client);

    // One dashboard session with a socket on each node counts once.
    let _a = ws(nodes[0].addr, "same-session").await;
    let _b = ws(nodes[1].addr, "same-session").await;
    let _c = ws(nodes[1].addr, "other-session").await;
    let counted = wait_for_presence(&nodes[0], |sessions| sessions == 2.0).await;
    assert_eq!(counted, 2.0, "two distinct sessions across two nodes");
    // A dead node's sessions leave within the presence TTL.
    let started = Instant::now();
    nodes[1].kill();
    let gone = wait_for_presence(&nodes[0], |sessions| sessions == 1.0).await;
    assert_eq!(gone, 1.0);
    eprintln!(
        "a killed node's sessions left after {:?}",
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Waits (up to 35 s) for the cluster-wide active users, read from the
/// snapshot, to satisfy `done`; returns the last value seen.
async fn wait_for_presence(node: &Node, done: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(35);
    let mut last = f64::NAN;
    while Instant::now() < deadline {
        let (_, snapshot) = http_to(node.addr, "GET", "/api/snapshot", &[], b"").await;
        last = snapshot["active_users"]["sessions"]
            .as_f64()
            .unwrap_or(f64::NAN);
        if done(last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    last
}

#[tokio::test]
async fn a_redis_restored_from_an_older_snapshot_starts_a_new_epoch() {
    // No append-only file: what Redis has after a crash is its last snapshot.
    let Some((_serial, dir, mut redis)) = scenario("snapshot", false) else {
        return;
    };
    let nodes = cluster(&redis, &dir, 2).await;
    for i in 0..5 {
        assert_eq!(
            post_tick(nodes[i % 2].addr, "ACME", i as u64 + 1).await.0,
            200
        );
    }
    let snapshot = redis.save_snapshot();
    let mut last = 0;
    for i in 0..5 {
        let (status, reply) = post_tick(nodes[i % 2].addr, "ACME", 10 + i as u64).await;
        assert_eq!(status, 200, "{reply}");
        last = reply["offset"].as_u64().expect("offset");
    }
    let epoch = epoch_of(&nodes[0]).await;
    redis.crash_and_restore(&snapshot);
    // The nodes applied groups the restored Redis no longer has: the log
    // clients recovered from is gone, so the data set starts a new epoch.
    let (watched, old) = (&nodes[1], &epoch);
    let fresh = eventually(
        Duration::from_secs(30),
        Duration::from_millis(300),
        move || async move { Some(epoch_of(watched).await).filter(|now| now != old) },
    )
    .await
    .expect("Redis went back in time: new epoch");
    wait_for_leader(&nodes).await;
    for node in &nodes {
        node.ready().await;
        assert_eq!(epoch_of(node).await, fresh, "{} adopted it", node.id);
        let mut client = ws(node.addr, &format!("old-{}", node.id)).await;
        let subscribed = subscribe(
            &mut client,
            "ticks",
            Some(json!({"epoch": epoch, "offset": last})),
        )
        .await;
        assert_eq!(subscribed["recovered"], false, "{}: {subscribed}", node.id);
    }
    // Offsets go on counting up, never reused under the old epoch's name.
    let (status, reply) = post_tick(nodes[1].addr, "ACME", 99).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["epoch"], fresh.as_str());
    assert!(reply["offset"].as_u64().expect("offset") > last);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A dashboard click through `/rpc/react_to_post` on `node` (with `cookie`):
/// the status, the response head and the body.
async fn react(node: &Node, post_id: u64, cookie: Option<&str>) -> (u16, String, Value) {
    let origin = format!("http://{}", node.addr);
    let mut headers = vec![
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Origin", origin.as_str()),
    ];
    if let Some(cookie) = cookie {
        headers.push(("Cookie", cookie));
    }
    let form = format!("post_id={post_id}&kind=like");
    http_with_head(
        node.addr,
        "POST",
        "/rpc/react_to_post",
        &headers,
        form.as_bytes(),
    )
    .await
}

#[tokio::test]
async fn a_second_click_undoes_the_first_whichever_node_it_reaches() {
    let Some((_serial, dir, redis)) = scenario("reactions", true) else {
        return;
    };
    let mut nodes = cluster(&redis, &dir, 2).await;
    let leader = wait_for_leader(&nodes).await;
    let follower = 1 - leader;
    let body = json!({"author": "ann", "text": "$ACME news"});
    let (status, post) = http_to(
        nodes[0].addr,
        "POST",
        "/api/posts",
        &[JSON],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{post}");
    let id = post["id"].as_u64().expect("id");

    // Liked through the follower (forwarded to the leader)...
    let (status, head, liked) = react(&nodes[follower], id, None).await;
    assert_eq!(status, 200, "{liked}");
    assert_eq!(
        (liked["likes"].as_i64(), liked["on"].as_bool()),
        (Some(1), Some(true))
    );
    let cookie = head
        .lines()
        .filter_map(|line| line.strip_prefix("set-cookie: "))
        .find(|c| c.starts_with("pulse_sid="))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
        .expect("a session cookie");
    // ...undone through the leader: the same session, one like at most.
    let (status, _, undone) = react(&nodes[leader], id, Some(&cookie)).await;
    assert_eq!(status, 200, "{undone}");
    assert_eq!(
        (undone["likes"].as_i64(), undone["on"].as_bool()),
        (Some(0), Some(false))
    );
    // Liked again through the follower: on, once.
    let (status, _, again) = react(&nodes[follower], id, Some(&cookie)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (again["likes"].as_i64(), again["on"].as_bool()),
        (Some(1), Some(true))
    );

    // The leader dies; the follower, which replayed the reactions, takes
    // over and still knows this session has liked the post.
    nodes[leader].kill();
    wait_for_leader(&nodes).await;
    let (clicked, cookie) = (&nodes[follower], cookie.as_str());
    let after = eventually(
        Duration::from_secs(20),
        Duration::from_millis(200),
        move || async move {
            let (status, _, body) = react(clicked, id, Some(cookie)).await;
            (status == 200).then_some(body)
        },
    )
    .await
    .expect("the new leader takes clicks");
    assert_eq!(
        (after["likes"].as_i64(), after["on"].as_bool()),
        (Some(0), Some(false)),
        "{after}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_clients_rate_limit_holds_across_the_cluster() {
    let Some((_serial, dir, redis)) = scenario("rates", true) else {
        return;
    };
    let mut nodes = Vec::new();
    for id in ["n1", "n2"] {
        let node = Node::start_with_rate(id, &redis, &dir, 5.0);
        node.ready().await;
        nodes.push(node);
    }
    wait_for_leader(&nodes).await;
    // Both nodes count each other before the limit is split.
    let counted = &nodes[1];
    eventually(
        Duration::from_secs(10),
        Duration::from_millis(200),
        move || async move {
            let (_, text) = http_to(counted.addr, "GET", "/metrics", &[], b"").await;
            let text = text.as_str().unwrap_or_default().to_owned();
            text.contains("\npulse_cluster_nodes 2\n").then_some(())
        },
    )
    .await
    .expect("each node counts two");
    // Buckets refill to the shared burst.
    tokio::time::sleep(Duration::from_secs(3)).await;
    // One client, spreading requests over both nodes as fast as it can:
    // the burst is 2 × 5 = 10 in all, not 10 per node.
    let started = Instant::now();
    let mut accepted = 0;
    for i in 0..40 {
        let (status, reply) = post_tick(nodes[i % 2].addr, "ACME", i as u64 + 1).await;
        match status {
            200 => accepted += 1,
            429 => {}
            other => panic!("{other}: {reply}"),
        }
    }
    // What refilled meanwhile: 5/s in all when split, 10/s if each node
    // allowed the full rate.
    let refilled = 5.0 * started.elapsed().as_secs_f64();
    let split = 10.0 + refilled;
    let unsplit = 20.0 + 2.0 * refilled;
    assert!(
        (8.0..=split + 1.0).contains(&f64::from(accepted)) && f64::from(accepted) < unsplit - 2.0,
        "{accepted} of 40 accepted across 2 nodes in {:?} (split bound {split:.1}, unsplit {unsplit:.1})",
        started.elapsed()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The log's meta hash fields (`o:<topic epoch>`, last offsets) of `symbol`.
fn offset_fields(redis: &Redis, symbol: &str) -> Vec<String> {
    let fields: Vec<String> = redis::cmd("HKEYS")
        .arg("pulse:{p}:meta")
        .query(&mut redis.conn())
        .expect("reads the meta hash");
    let suffix = format!(":{symbol}");
    fields
        .into_iter()
        .filter(|field| field.starts_with("o:") && field.ends_with(&suffix))
        .collect()
}

/// A symbol forgotten for being idle takes its topics' last offsets out of
/// the log too, so symbols that come and go do not grow Redis for good; a
/// symbol someone still subscribes to keeps them, and a forgotten one comes
/// back under new epochs.
#[tokio::test]
async fn a_forgotten_symbols_offsets_leave_the_log() {
    let Some((_serial, dir, redis)) = scenario("forget", false) else {
        return;
    };
    let nodes = cluster(&redis, &dir, 2).await;
    let leader = &nodes[wait_for_leader(&nodes).await];
    for symbol in ["IDLE", "KEPT"] {
        assert_eq!(post_tick(leader.addr, symbol, 1).await.0, 200);
    }
    let before = offset_fields(&redis, "IDLE");
    assert_eq!(before.len(), 2, "ticks and candles: {before:?}");
    // A subscriber on the leader keeps KEPT.
    let mut client = ws(leader.addr, "keeper").await;
    subscribe(&mut client, "ticks:KEPT", None).await;
    let (status, reply) = http_to(
        leader.addr,
        "POST",
        "/api/debug/forget-idle-symbols",
        &[],
        b"",
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["forgotten"], json!(["IDLE"]));
    let watched = &redis;
    eventually(
        Duration::from_secs(10),
        Duration::from_millis(100),
        move || async move { offset_fields(watched, "IDLE").is_empty().then_some(()) },
    )
    .await
    .expect("IDLE's offsets leave the log");
    assert_eq!(offset_fields(&redis, "KEPT").len(), 2, "KEPT stays whole");

    // IDLE comes back, under epochs of its own.
    assert_eq!(post_tick(leader.addr, "IDLE", 2).await.0, 200);
    let after = offset_fields(&redis, "IDLE");
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(
        after.iter().all(|field| !before.contains(field)),
        "{after:?} {before:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

//! A `pulse` server process of its own (the real binary, on a random port,
//! with a database in a temp dir), and what the export tests read from it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::{dechunk, exchange, http_to, JSON};

pub struct Node {
    pub addr: SocketAddr,
    pub db: PathBuf,
    dir: PathBuf,
    child: Child,
}

fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

impl Node {
    /// A fresh server with an empty database.
    pub async fn start(name: &str) -> Node {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pulse-export-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let db = dir.join("pulse.db");
        let addr = free_addr();
        let child = Command::new(env!("CARGO_BIN_EXE_pulse"))
            .args([
                "--addr",
                &addr.to_string(),
                "--no-simulator",
                "--sync",
                "normal",
            ])
            .arg("--db")
            .arg(&db)
            .env("RUST_LOG", "warn")
            .env("PULSE_INGEST_RATE", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("pulse starts");
        let node = Node {
            addr,
            db,
            dir,
            child,
        };
        for _ in 0..400 {
            if tokio::net::TcpStream::connect(addr).await.is_ok()
                && http_to(addr, "GET", "/readyz", &[], b"").await.0 == 200
            {
                return node;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server at {addr} did not become ready");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory, from `/proc/<pid>/status`.
    pub fn rss_bytes(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("/proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kib| kib * 1024)
            .expect("VmRSS")
    }

    pub async fn post(&self, path: &str, body: &Value) -> Value {
        let (status, answer) = http_to(
            self.addr,
            "POST",
            path,
            &[JSON],
            body.to_string().as_bytes(),
        )
        .await;
        assert_eq!(status, 200, "{path}: {answer}");
        answer
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let (status, answer) = http_to(self.addr, "GET", path, &[], b"").await;
        assert_eq!(status, 200, "{path}: {answer}");
        answer
    }

    /// `GET path`: the status, the head (lower-cased) and the body, de-chunked.
    pub async fn get(&self, path: &str) -> (u16, String, Vec<u8>) {
        let (head, body) = exchange(self.addr, "GET", path, "", b"").await;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let body = if head.contains("transfer-encoding: chunked") {
            dechunk(&body)
        } else {
            body
        };
        (status, head, body)
    }

    /// An export that must succeed: its body.
    pub async fn export(&self, query: &str) -> Vec<u8> {
        let (status, head, body) = self.get(&format!("/api/export?{query}")).await;
        assert_eq!(
            status,
            200,
            "{query}: {head}\n{}",
            String::from_utf8_lossy(&body)
        );
        body
    }

    /// The value of a metric line (`name value`) on `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let (_, page) = http_to(self.addr, "GET", "/metrics", &[], b"").await;
        let page = page.as_str().unwrap_or_default().to_owned();
        page.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics"))
    }

    /// Adds `count` ticks straight into the database (much faster than
    /// ingest), `per_ts` rows on each timestamp, over `symbols` symbols.
    pub fn insert_ticks(&self, count: usize, per_ts: usize, symbols: usize) {
        let mut conn = rusqlite::Connection::open(&self.db).expect("opens the database");
        conn.busy_timeout(Duration::from_secs(10))
            .expect("busy timeout");
        let tx = conn.transaction().expect("transaction");
        {
            let mut insert = tx
                .prepare("INSERT INTO ticks (symbol, price, volume, ts) VALUES (?1, ?2, ?3, ?4)")
                .expect("prepares");
            for n in 0..count {
                let symbol = format!("S{}", n % symbols);
                let ts = 1_700_000_000_000 + (n / per_ts) as i64;
                insert
                    .execute(rusqlite::params![
                        symbol,
                        100.0 + (n % 1000) as f64 / 8.0,
                        n as f64,
                        ts
                    ])
                    .expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `pulse replay FILE --url` against `node`: its stdout and stderr.
pub fn replay(node: &Node, file: &Path) -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_pulse"))
        .arg("replay")
        .arg(file)
        .args(["--url", &format!("http://{}", node.addr)])
        .env("RUST_LOG", "warn")
        .output()
        .expect("pulse replay runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "pulse replay {}: {stdout}\n{stderr}",
        file.display()
    );
    (stdout, stderr)
}

/// A file in the node's temp dir.
pub fn write_file(node: &Node, name: &str, contents: &[u8]) -> PathBuf {
    let path = node.dir.join(name);
    std::fs::write(&path, contents).expect("file written");
    path
}

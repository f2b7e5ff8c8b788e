//! Server memory and connection count from `GET /metrics`, over a bare
//! HTTP/1.1 request: loadgen needs two gauges, not an HTTP client.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The gauges loadgen reports; NaN when the server did not export one.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServerMetrics {
    /// `pulse_process_resident_memory_bytes`.
    pub rss: f64,
    /// `pulse_ws_connections`.
    pub connections: f64,
}

impl ServerMetrics {
    /// Stands in when the final read fails, so the report still prints.
    pub fn unknown() -> Self {
        Self {
            rss: f64::NAN,
            connections: f64::NAN,
        }
    }
}

pub async fn server_metrics(addr: SocketAddr) -> Result<ServerMetrics> {
    let fetch = async {
        let mut tcp = TcpStream::connect(addr).await?;
        let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        tcp.write_all(request.as_bytes()).await?;
        let mut body = Vec::new();
        tcp.read_to_end(&mut body).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&body).into_owned())
    };
    let text = tokio::time::timeout(Duration::from_secs(10), fetch)
        .await
        .map_err(|_| anyhow!("GET http://{addr}/metrics timed out"))?
        .with_context(|| format!("GET http://{addr}/metrics failed"))?;
    parse(addr, &text)
}

/// Reads the gauges from a whole HTTP response (status line, headers, body).
fn parse(addr: SocketAddr, response: &str) -> Result<ServerMetrics> {
    let status = response.lines().next().unwrap_or_default();
    if !status.contains(" 200") {
        bail!("GET http://{addr}/metrics answered '{status}'");
    }
    let value = |name: &str| {
        response
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    Ok(ServerMetrics {
        rss: value("pulse_process_resident_memory_bytes"),
        connections: value("pulse_ws_connections"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDR: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 3900);

    #[test]
    fn reads_the_two_gauges_by_exact_name() {
        let response = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n\
            # HELP pulse_ws_connections_total Connections accepted.\n\
            pulse_ws_connections_total 99\n\
            pulse_ws_connections 21\n\
            pulse_process_resident_memory_bytes 52428800\n";
        let metrics = parse(ADDR, response).ok();
        let expected = ServerMetrics {
            rss: 52_428_800.0,
            connections: 21.0,
        };
        assert_eq!(metrics, Some(expected));
    }

    #[test]
    fn a_missing_gauge_is_nan() {
        let metrics = parse(ADDR, "HTTP/1.1 200 OK\r\n\r\npulse_ws_connections 3\n");
        let metrics = metrics.unwrap_or_default();
        assert!(metrics.rss.is_nan());
        assert_eq!(metrics.connections, 3.0);
    }

    #[test]
    fn a_non_200_answer_is_an_error_naming_the_status() {
        let error = parse(ADDR, "HTTP/1.1 401 Unauthorized\r\n\r\n").map_err(|e| e.to_string());
        assert!(error.is_err_and(|e| e.contains("answered 'HTTP/1.1 401 Unauthorized'")));
        assert!(parse(ADDR, "").is_err());
    }
}

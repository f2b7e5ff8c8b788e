//! Setup checks that fail fast, before any connection is opened: a run that
//! would hit a remote server or the open-files limit halfway is worse than none.

use std::net::{SocketAddr, ToSocketAddrs};

use anyhow::{anyhow, bail, Context, Result};

use crate::args::Args;

/// What the checks established, for the phases that follow.
pub struct Setup {
    /// The server, for `GET /metrics`.
    pub addr: SocketAddr,
    /// See [`Args::symbol`].
    pub symbol: Option<String>,
}

/// Validates the flags and the environment, in the order the errors are reported.
pub fn check(args: &Args) -> Result<Setup> {
    let addr = loopback_addr(&args.url)?;
    for url in &args.subscriber_urls {
        loopback_addr(url)?;
    }
    if args.subscribers == 0 {
        bail!("--subscribers must be at least 1");
    }
    // Written positively so NaN counts as invalid.
    let publishing = args.rate > 0.0 && args.duration > 0.0 && args.publishers > 0;
    if !args.idle && !publishing {
        bail!("--rate, --duration and --publishers must be positive");
    }
    let needed = (args.subscribers + args.publishers + 64) as u64;
    if let Some(limit) = open_files_limit() {
        if limit < needed {
            bail!(
                "the open-files limit is {limit} but {} subscribers need about {needed}; \
                 run `ulimit -n 65536` in this shell (and in the server's shell) first",
                args.subscribers
            );
        }
    }
    let symbol = args.symbol()?;
    Ok(Setup { addr, symbol })
}

/// `host:port` of a `ws://` URL, which must be on loopback: the benchmark
/// measures the server, not a network.
pub fn loopback_addr(url: &str) -> Result<SocketAddr> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| anyhow!("--url must start with ws:// (got '{url}')"))?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    with_port
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve '{authority}'"))?
        .find(|a| a.ip().is_loopback())
        .ok_or_else(|| anyhow!("loadgen only targets loopback (127.0.0.1), not '{authority}'"))
}

/// Soft limit on open files of this process, from /proc/self/limits.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    soft_open_files(&limits)
}

/// The soft `Max open files` value of a /proc/<pid>/limits text.
fn soft_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    if soft == "unlimited" {
        return Some(u64::MAX);
    }
    soft.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls_resolve_with_their_port() {
        let addr = loopback_addr("ws://127.0.0.1:3911/ws").ok();
        assert_eq!(addr, Some(SocketAddr::from(([127, 0, 0, 1], 3911))));
        let v6 = loopback_addr("ws://[::1]:3900/ws?x=1").ok();
        assert_eq!(
            v6.map(|a| (a.ip().is_loopback(), a.port())),
            Some((true, 3900))
        );
    }

    #[test]
    fn a_url_without_port_means_port_80() {
        let addr = loopback_addr("ws://127.0.0.1/ws").ok();
        assert_eq!(addr, Some(SocketAddr::from(([127, 0, 0, 1], 80))));
    }

    #[test]
    fn other_schemes_and_remote_hosts_are_refused() {
        let wss = loopback_addr("wss://127.0.0.1:3900/ws").map_err(|e| e.to_string());
        assert!(wss.is_err_and(|e| e.contains("must start with ws://")));
        let remote = loopback_addr("ws://192.0.2.1:3900/ws").map_err(|e| e.to_string());
        assert!(remote.is_err_and(|e| e.contains("only targets loopback")));
    }

    #[test]
    fn reads_the_soft_open_files_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max processes             63704                63704                processes\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(soft_open_files(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(soft_open_files(unlimited), Some(u64::MAX));
        assert_eq!(soft_open_files("Max processes 10 10 processes\n"), None);
    }
}

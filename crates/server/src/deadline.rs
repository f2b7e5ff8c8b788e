//! Waiting on a deadline that may not be set, for `tokio::select!` loops
//! (the accept loop's watchdog, a throttled connection, the replay pacer).

use tokio::time::Instant;

/// Sleeps until `deadline`, or forever when there is none.
pub async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

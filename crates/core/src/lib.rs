//! Pulse's core: what the server, the browser and the tools share.
//!
//! - [`model`]: the domain types and their validation.
//! - [`protocol`]: the WebSocket wire format, its payloads and close codes.
//! - [`analytics`]: market, sentiment and engagement engines.
//! - [`time`]: time bucketing shared by the engines and the dashboard.
//!
//! Pure Rust with no I/O and no clock (time is passed in), so it compiles to
//! wasm32 and every engine runs the same on the server and in the browser.

pub mod analytics;
pub mod error;
pub mod model;
pub mod protocol;
pub mod time;

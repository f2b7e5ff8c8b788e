//! Analytics engines: pure Rust, no I/O, no clocks (time is passed in), so
//! they run the same on the server and in the browser and are easy to test.

pub mod engagement;
pub mod market;
pub mod sentiment;
pub mod sentiment_window;

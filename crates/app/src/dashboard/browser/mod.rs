//! The dashboard's browser side (browser builds only; the server renders
//! the page once and has nothing to wire): the live connection, time
//! travel's player, and a failed first load tried again (the static
//! bundle's server may be down).

pub mod player;
pub mod retry;
pub mod wiring;

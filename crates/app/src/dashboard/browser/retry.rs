//! The first load again after a failure, with the live connection's backoff:
//! a static bundle can open while its server is down or unreachable, and
//! should fill itself once the server answers, as a hydrated page's socket
//! comes back by itself.

use std::cell::RefCell;

use leptos::prelude::*;

use crate::dashboard::DashboardData;
use crate::live::Backoff;
use crate::rpc_error::RpcError;

thread_local! {
    /// One dashboard per page, so one backoff.
    static BACKOFF: RefCell<Backoff> = RefCell::new(Backoff::default());
}

/// Loads `data` again after the next backoff delay.
pub fn later(data: Resource<Result<DashboardData, RpcError>>) {
    let delay = BACKOFF.with(|b| b.borrow_mut().next_delay(js_sys::Math::random()));
    set_timeout(move || data.refetch(), delay);
}

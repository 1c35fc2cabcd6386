//! What receiving from another server may cost this one. Every request the pipeline makes to
//! fill what a PDU lacks (auth chains, gaps, states), and every event it verifies from the
//! answers, is spent from the PDU's budget and from its transaction's; past either, further
//! fetches fail and the PDU is taken with what it has or refused. Honest traffic needs a few
//! requests per PDU at most; a hostile server's made-up history runs out of budget instead of
//! out of our time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use crate::error::{Error, ErrorKind, Result};
use crate::network::Request;
use crate::server::Homeserver;

/// Requests one received PDU may cause (an auth chain, a gap, three states fetched with up to
/// 51 single events each is about 180).
pub const PDU_REQUESTS: usize = 200;
/// Events verified from the answers for one PDU: three states of the largest size taken.
pub const PDU_EVENTS: usize = 150_000;
/// The longest one PDU's fetches may take.
pub const PDU_TIME: Duration = Duration::from_secs(60);
/// Requests one transaction's PDUs may cause together.
pub const TRANSACTION_REQUESTS: usize = 400;
/// Events verified for one transaction's PDUs together.
pub const TRANSACTION_EVENTS: usize = 200_000;
/// The longest one transaction's fetches may take together.
pub const TRANSACTION_TIME: Duration = Duration::from_secs(180);

/// A budget of requests, verified events and time, drawn on together with its parent's.
pub struct Budget {
    requests: AtomicUsize,
    events: AtomicUsize,
    deadline: Instant,
    parent: Option<Arc<Budget>>,
}

impl Budget {
    pub fn new(requests: usize, events: usize, time: Duration) -> Arc<Self> {
        Arc::new(Budget {
            requests: AtomicUsize::new(requests),
            events: AtomicUsize::new(events),
            deadline: Instant::now() + time,
            parent: None,
        })
    }

    /// One transaction's budget.
    pub fn transaction() -> Arc<Self> {
        Self::new(TRANSACTION_REQUESTS, TRANSACTION_EVENTS, TRANSACTION_TIME)
    }

    /// A budget for one PDU, drawn on together with `parent` (its transaction's).
    pub fn pdu(parent: &Arc<Budget>) -> Arc<Self> {
        let mut child = Self::new(PDU_REQUESTS, PDU_EVENTS, PDU_TIME);
        Arc::get_mut(&mut child).expect("new").parent = Some(parent.clone());
        child
    }

    /// When the fetches must be done by: this budget's deadline or its parent's.
    pub fn deadline(&self) -> Instant {
        self.parent.as_ref().map_or(self.deadline, |p| p.deadline().min(self.deadline))
    }

    /// Takes one request, if this budget and its parent have one left.
    fn take_request(&self) -> bool {
        take(&self.requests, 1) == 1 && self.parent.as_ref().is_none_or(|p| p.take_request())
    }

    /// How many of `wanted` events may be verified (taken from this budget and its parent).
    pub fn take_events(&self, wanted: usize) -> usize {
        let mine = take(&self.events, wanted);
        match &self.parent {
            Some(p) => p.take_events(mine),
            None => mine,
        }
    }
}

/// Takes up to `wanted` from `left`; how many were taken.
fn take(left: &AtomicUsize, wanted: usize) -> usize {
    let mut taken = 0;
    let _ = left.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
        taken = n.min(wanted);
        Some(n - taken)
    });
    taken
}

impl Homeserver {
    /// Sends one request on `budget`: refused once it is spent, cut short at its deadline.
    pub(crate) async fn fetch(&self, budget: &Budget, destination: &str, request: Request) -> Result<Value> {
        if !budget.take_request() {
            return Err(spent("requests"));
        }
        match tokio::time::timeout_at(budget.deadline(), self.ask(destination, request)).await {
            Ok(answer) => answer,
            Err(_) => Err(spent("time")),
        }
    }
}

fn spent(what: &str) -> Error {
    Error::new(ErrorKind::ResourceLimitExceeded, format!("this PDU's budget of {what} for fetching is spent"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pdu_draws_on_its_transaction() {
        let txn = Budget::new(3, 10, Duration::from_secs(60));
        let a = Budget::pdu(&txn);
        assert!(a.take_request() && a.take_request());
        let b = Budget::pdu(&txn);
        assert!(b.take_request());
        assert!(!b.take_request(), "the transaction's three requests are spent");
        assert_eq!(a.take_events(8), 8);
        assert_eq!(b.take_events(8), 2, "the transaction has two events left");
        assert_eq!(txn.take_events(1), 0);
    }
}

//! Token-bucket rate limits on login, registration and sending, answering `M_LIMIT_EXCEEDED`
//! with `retry_after_ms` as the spec asks.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use axum::http::StatusCode;

use crate::error::MatrixError;
use crate::state::RateLimit;

#[derive(Default)]
pub struct Limiters {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Limiters {
    /// Takes one action for `key` under `limit`, or says how long to wait.
    pub fn check(&self, limit: RateLimit, key: &str) -> Result<(), MatrixError> {
        if limit.per_second <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 100_000 {
            buckets.retain(|_, (_, t)| now.duration_since(*t).as_secs_f64() * limit.per_second < limit.burst);
        }
        let (tokens, last) = buckets.entry(key.to_owned()).or_insert((limit.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * limit.per_second).min(limit.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return Ok(());
        }
        let wait_ms = ((1.0 - *tokens) / limit.per_second * 1000.0).ceil() as u64;
        Err(MatrixError::new(StatusCode::TOO_MANY_REQUESTS, "M_LIMIT_EXCEEDED", "Too many requests")
            .with("retry_after_ms", wait_ms))
    }
}

//! User-interactive authentication: sessions that remember which stages a client completed,
//! and the 401 answer that lists the flows.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::error::MatrixError;

const SESSION_LIFETIME: Duration = Duration::from_secs(30 * 60);

#[derive(Default)]
pub struct UiaSessions {
    sessions: Mutex<HashMap<String, (Vec<String>, Instant)>>,
}

pub enum Stage<'a> {
    /// The stage's credentials are right.
    Passed(&'a str),
    /// They are wrong: answer 401 with this error beside the flows.
    Failed(MatrixError),
}

impl UiaSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Vec<String>, Instant)>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs one round. `auth` is the request's `auth` object; `check` verifies one stage.
    /// `Ok(())` once a flow is complete; otherwise the 401 the client must answer.
    pub fn step(
        &self,
        flows: &[Vec<&str>],
        params: Value,
        auth: Option<&Value>,
        check: impl FnOnce(&str, &Value) -> Stage<'static>,
    ) -> Result<(), MatrixError> {
        let now = Instant::now();
        let mut sessions = self.lock();
        sessions.retain(|_, (_, t)| now.duration_since(*t) < SESSION_LIFETIME);
        let session = auth
            .and_then(|a| a.get("session"))
            .and_then(Value::as_str)
            .filter(|s| sessions.contains_key(*s))
            .map(str::to_owned);
        let session = match session {
            Some(s) => s,
            None => {
                let id: String = (0..24).map(|_| char::from(b'a' + rand::random::<u8>() % 26)).collect();
                sessions.insert(id.clone(), (Vec::new(), now));
                id
            }
        };
        let mut error = None;
        if let Some(auth) = auth
            && let Some(kind) = auth.get("type").and_then(Value::as_str)
        {
            let allowed = flows.iter().any(|f| f.contains(&kind));
            if !allowed {
                error = Some(MatrixError::new(StatusCode::UNAUTHORIZED, "M_UNRECOGNIZED", "Unknown auth type"));
            } else {
                drop(sessions);
                let result = check(kind, auth);
                sessions = self.lock();
                match result {
                    Stage::Passed(stage) => {
                        if let Some((done, _)) = sessions.get_mut(&session)
                            && !done.iter().any(|d| d == stage)
                        {
                            done.push(stage.to_owned());
                        }
                    }
                    Stage::Failed(e) => error = Some(e),
                }
            }
        }
        let completed = sessions.get(&session).map(|(d, _)| d.clone()).unwrap_or_default();
        if flows.iter().any(|f| f.iter().all(|s| completed.iter().any(|c| c == s))) {
            sessions.remove(&session);
            return Ok(());
        }
        let mut answer = MatrixError::new(StatusCode::UNAUTHORIZED, "M_FORBIDDEN", "Authentication required")
            .with("flows", flows.iter().map(|f| json!({ "stages": f })).collect::<Vec<_>>())
            .with("params", params)
            .with("session", session)
            .with("completed", completed);
        match error {
            Some(e) => {
                answer.errcode = e.errcode;
                answer.error = e.error;
                Err(answer)
            }
            None => {
                // No attempt yet: the spec's 401 without an errcode.
                Err(answer.without_errcode())
            }
        }
    }
}

impl MatrixError {
    /// A UIA challenge carries no `errcode` until an attempt failed.
    fn without_errcode(mut self) -> Self {
        self.errcode = "";
        self
    }
}

//! User-interactive authentication: sessions that remember which stages a client completed
//! (and what the endpoint asked them to remember, such as a registration's password hash),
//! and the 401 answer that lists the flows.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use crate::error::MatrixError;

const SESSION_LIFETIME: Duration = Duration::from_secs(30 * 60);

#[derive(Default)]
pub struct UiaSessions {
    sessions: Mutex<HashMap<String, Session>>,
}

struct Session {
    completed: Vec<String>,
    /// What the endpoint remembers between rounds, because clients need not repeat it.
    data: Map<String, Value>,
    started: Instant,
}

pub enum Stage<'a> {
    /// The stage's credentials are right.
    Passed(&'a str),
    /// They are wrong: answer 401 with this error beside the flows.
    Failed(MatrixError),
}

impl UiaSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers `value` under `key` in an open session, unless something is there already.
    pub fn remember(&self, session: &str, key: &str, value: Value) {
        if let Some(s) = self.lock().get_mut(session) {
            s.data.entry(key).or_insert(value);
        }
    }

    /// What an open session remembers under `key`.
    pub fn recall(&self, session: &str, key: &str) -> Option<Value> {
        self.lock().get(session).and_then(|s| s.data.get(key).cloned())
    }

    /// Runs one round. `auth` is the request's `auth` object; `check` verifies one stage.
    /// Once a flow is complete, what the session remembered; otherwise the 401 the client
    /// must answer (its `session` field names the session, see [`challenge_session`]).
    pub fn step(
        &self,
        flows: &[Vec<&str>],
        params: Value,
        auth: Option<&Value>,
        check: impl FnOnce(&str, &Value) -> Stage<'static>,
    ) -> Result<Map<String, Value>, MatrixError> {
        let now = Instant::now();
        let mut sessions = self.lock();
        sessions.retain(|_, s| now.duration_since(s.started) < SESSION_LIFETIME);
        let session = auth
            .and_then(|a| a.get("session"))
            .and_then(Value::as_str)
            .filter(|s| sessions.contains_key(*s))
            .map(str::to_owned);
        let session = match session {
            Some(s) => s,
            None => {
                let id: String = (0..24).map(|_| char::from(b'a' + rand::random::<u8>() % 26)).collect();
                sessions.insert(id.clone(), Session { completed: Vec::new(), data: Map::new(), started: now });
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
                        if let Some(s) = sessions.get_mut(&session)
                            && !s.completed.iter().any(|d| d == stage)
                        {
                            s.completed.push(stage.to_owned());
                        }
                    }
                    Stage::Failed(e) => error = Some(e),
                }
            }
        }
        let completed = sessions.get(&session).map(|s| s.completed.clone()).unwrap_or_default();
        if flows.iter().any(|f| f.iter().all(|s| completed.iter().any(|c| c == s))) {
            return Ok(sessions.remove(&session).map(|s| s.data).unwrap_or_default());
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

/// The session a UIA challenge (the 401 of [`UiaSessions::step`]) opened or continued.
pub fn challenge_session(challenge: &MatrixError) -> Option<&str> {
    challenge.extra.get("session").and_then(Value::as_str)
}

impl MatrixError {
    /// A UIA challenge carries no `errcode` until an attempt failed.
    fn without_errcode(mut self) -> Self {
        self.errcode = "";
        self
    }
}

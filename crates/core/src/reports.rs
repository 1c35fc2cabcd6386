//! Reports of content to the server's administrators (`/rooms/{roomId}/report/{eventId}`,
//! `/rooms/{roomId}/report`, `/users/{userId}/report`), kept for the admin API. As in
//! Synapse, a report of a user who is not this server's, or does not exist, is accepted and
//! dropped, so reports cannot be used to find out which users exist.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::server::Homeserver;
use crate::tables::{REPORTS, key_pos};

/// The longest reason a room or user report may give.
pub const MAX_REASON: usize = 1000;

/// One report, as filed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// `event`, `room` or `user`.
    pub kind: String,
    pub reporter: String,
    pub room_id: Option<String>,
    pub event_id: Option<String>,
    pub user_id: Option<String>,
    pub reason: Option<String>,
    pub score: Option<i64>,
    pub received_ts: u64,
}

impl Homeserver {
    /// Files a report of an event the reporter can see.
    pub fn report_event(
        &self,
        reporter: &str,
        room_id: &str,
        event_id: &str,
        reason: Option<String>,
        score: Option<i64>,
    ) -> Result<()> {
        let in_room = self.event_meta(event_id)?.is_some_and(|m| m.room_id == room_id && !m.outlier);
        if !in_room || !self.may_see(reporter, event_id)? {
            return Err(Error::not_found("Unable to report event: it does not exist or you aren't able to see it."));
        }
        self.file(Report {
            kind: "event".into(),
            reporter: reporter.into(),
            room_id: Some(room_id.into()),
            event_id: Some(event_id.into()),
            user_id: None,
            reason,
            score,
            received_ts: Self::now_ms(),
        })
    }

    /// Files a report of a room this server knows.
    pub fn report_room(&self, reporter: &str, room_id: &str, reason: &str) -> Result<()> {
        check_reason(reason)?;
        if self.room_info(room_id)?.is_none() {
            return Err(Error::not_found("Room does not exist"));
        }
        self.file(Report {
            kind: "room".into(),
            reporter: reporter.into(),
            room_id: Some(room_id.into()),
            event_id: None,
            user_id: None,
            reason: Some(reason.into()),
            score: None,
            received_ts: Self::now_ms(),
        })
    }

    /// Files a report of a user of this server; other users' reports are dropped unseen.
    pub fn report_user(&self, reporter: &str, user_id: &str, reason: &str) -> Result<()> {
        check_reason(reason)?;
        if !self.is_local(user_id) || self.account(user_id)?.is_none() {
            return Ok(());
        }
        self.file(Report {
            kind: "user".into(),
            reporter: reporter.into(),
            room_id: None,
            event_id: None,
            user_id: Some(user_id.into()),
            reason: Some(reason.into()),
            score: None,
            received_ts: Self::now_ms(),
        })
    }

    /// Every report, oldest first.
    pub fn reports(&self) -> Result<Vec<Report>> {
        Ok(self.scan_json::<Report>(REPORTS, &[])?.into_iter().map(|(_, r)| r).collect())
    }

    fn file(&self, report: Report) -> Result<()> {
        tracing::info!(kind = %report.kind, reporter = %report.reporter, "content reported");
        self.write(|txn| {
            let pos = txn.pos();
            txn.put_json(REPORTS, key_pos(&[], pos), &report);
            Ok(())
        })
    }
}

fn check_reason(reason: &str) -> Result<()> {
    if reason.chars().count() > MAX_REASON {
        return Err(Error::bad_json(format!("Reason must be less than {MAX_REASON} characters")));
    }
    Ok(())
}

/// A report body's optional `reason` and `score`, checked as Synapse checks them.
pub fn event_report_fields(body: &serde_json::Map<String, Value>) -> Result<(Option<String>, Option<i64>)> {
    let reason = match body.get("reason") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(Error::bad_json("Param 'reason' must be a string")),
    };
    let score = match body.get("score") {
        None => None,
        Some(v) => Some(
            v.as_i64()
                .filter(|_| v.is_i64() || v.is_u64())
                .ok_or_else(|| Error::bad_json("Param 'score' must be an integer"))?,
        ),
    };
    Ok((reason, score))
}

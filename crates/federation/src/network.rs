//! The engine's [`Network`]: each [`Request`] given its method, path and body, signed and sent
//! by [`crate::client`]; other servers' keys from [`crate::keys`]. No Matrix flow lives here:
//! the engine runs them and checks every answer.

use std::sync::Arc;

use reqwest::Method;
use ruma::signatures::PublicKeyMap;
use serde_json::{Value, json};
use tandem_core::network::{BoxFuture, MediaDownload, Network, Request};

use crate::Federation;

pub struct Remote(pub Arc<Federation>);

impl Network for Remote {
    fn request(&self, destination: String, request: Request) -> BoxFuture<'_, tandem_core::Result<Value>> {
        Box::pin(async move {
            let (method, path, body) = http(request);
            Ok(self.0.client.request(&self.0.hs, method, &destination, &path, body.as_ref()).await?)
        })
    }

    fn verify_keys(&self, wanted: Vec<(String, Vec<String>)>, at: u64) -> BoxFuture<'_, PublicKeyMap> {
        Box::pin(async move { self.0.key_map(&wanted, at).await })
    }

    fn download_media(
        &self,
        destination: String,
        media_id: String,
        timeout_ms: u64,
        file: std::path::PathBuf,
        max_bytes: u64,
    ) -> BoxFuture<'_, tandem_core::Result<MediaDownload>> {
        Box::pin(
            async move { crate::media::download(&self.0, &destination, &media_id, timeout_ms, &file, max_bytes).await },
        )
    }
}

/// A request's method, path (with its query) and body.
fn http(request: Request) -> (Method, String, Option<Value>) {
    const V1: &str = "/_matrix/federation/v1";
    const V2: &str = "/_matrix/federation/v2";
    match request {
        Request::MakeMembership { membership, room_id, user_id } => {
            let mut path = format!("{V1}/make_{membership}/{}/{}", enc(&room_id), enc(&user_id));
            if membership != "leave" {
                let versions: Vec<String> =
                    tandem_core::rooms::SUPPORTED_VERSIONS.iter().map(|v| format!("ver={v}")).collect();
                path = format!("{path}?{}", versions.join("&"));
            }
            (Method::GET, path, None)
        }
        Request::SendMembership { membership, room_id, event_id, pdu } => {
            // Knocks came after v2 of the others, and have only v1.
            let version = if membership == "knock" { V1 } else { V2 };
            (Method::PUT, format!("{version}/send_{membership}/{}/{}", enc(&room_id), enc(&event_id)), Some(pdu))
        }
        Request::Invite { room_id, event_id, body } => {
            (Method::PUT, format!("{V2}/invite/{}/{}", enc(&room_id), enc(&event_id)), Some(body))
        }
        Request::Event { event_id } => (Method::GET, format!("{V1}/event/{}", enc(&event_id)), None),
        Request::EventAuth { room_id, event_id } => {
            (Method::GET, format!("{V1}/event_auth/{}/{}", enc(&room_id), enc(&event_id)), None)
        }
        Request::StateIds { room_id, event_id } => {
            (Method::GET, format!("{V1}/state_ids/{}?event_id={}", enc(&room_id), enc(&event_id)), None)
        }
        Request::State { room_id, event_id } => {
            (Method::GET, format!("{V1}/state/{}?event_id={}", enc(&room_id), enc(&event_id)), None)
        }
        Request::MissingEvents { room_id, earliest, latest, limit } => {
            let body = json!({ "earliest_events": earliest, "latest_events": latest, "limit": limit, "min_depth": 0 });
            (Method::POST, format!("{V1}/get_missing_events/{}", enc(&room_id)), Some(body))
        }
        Request::Backfill { room_id, from, limit } => {
            let from: Vec<String> = from.iter().map(|id| format!("v={}", enc(id))).collect();
            (Method::GET, format!("{V1}/backfill/{}?{}&limit={limit}", enc(&room_id), from.join("&")), None)
        }
        Request::TimestampToEvent { room_id, ts, forward } => {
            let dir = if forward { "f" } else { "b" };
            (Method::GET, format!("{V1}/timestamp_to_event/{}?ts={ts}&dir={dir}", enc(&room_id)), None)
        }
        Request::Alias { alias } => (Method::GET, format!("{V1}/query/directory?room_alias={}", enc(&alias)), None),
        Request::Profile { user_id, field } => {
            let mut path = format!("{V1}/query/profile?user_id={}", enc(&user_id));
            if let Some(f) = field {
                path.push_str(&format!("&field={}", enc(&f)));
            }
            (Method::GET, path, None)
        }
        Request::PublicRooms { limit, since, search: Some(term) } => {
            let mut body = json!({ "filter": { "generic_search_term": term } });
            if let Some(l) = limit {
                body["limit"] = l.into();
            }
            if let Some(s) = since {
                body["since"] = s.into();
            }
            (Method::POST, format!("{V1}/publicRooms"), Some(body))
        }
        Request::PublicRooms { limit, since, search: None } => {
            let mut query = Vec::new();
            if let Some(l) = limit {
                query.push(format!("limit={l}"));
            }
            if let Some(s) = since {
                query.push(format!("since={}", enc(&s)));
            }
            let path = if query.is_empty() {
                format!("{V1}/publicRooms")
            } else {
                format!("{V1}/publicRooms?{}", query.join("&"))
            };
            (Method::GET, path, None)
        }
        Request::Hierarchy { room_id, suggested_only } => {
            (Method::GET, format!("{V1}/hierarchy/{}?suggested_only={suggested_only}", enc(&room_id)), None)
        }
        Request::UserDevices { user_id } => (Method::GET, format!("{V1}/user/devices/{}", enc(&user_id)), None),
        Request::KeysQuery { body } => (Method::POST, format!("{V1}/user/keys/query"), Some(body)),
        Request::KeysClaim { body } => (Method::POST, format!("{V1}/user/keys/claim"), Some(body)),
    }
}

/// Percent-encodes a path segment or query value.
pub(crate) fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding() {
        assert_eq!(enc("!a:b.org"), "%21a%3Ab.org");
        assert_eq!(enc("$ab+/="), "%24ab%2B%2F%3D");
    }

    #[test]
    fn paths() {
        let (m, path, _) = http(Request::MakeMembership {
            membership: "join",
            room_id: "!r:a.org".into(),
            user_id: "@u:b.org".into(),
        });
        assert_eq!(m, Method::GET);
        let vers: Vec<String> = (1..=12).map(|v| format!("ver={v}")).collect();
        assert_eq!(path, format!("/_matrix/federation/v1/make_join/%21r%3Aa.org/%40u%3Ab.org?{}", vers.join("&")));
        let (m, path, _) = http(Request::SendMembership {
            membership: "knock",
            room_id: "!r".into(),
            event_id: "$e".into(),
            pdu: json!({}),
        });
        assert_eq!((m, path.as_str()), (Method::PUT, "/_matrix/federation/v1/send_knock/%21r/%24e"));
        let (_, path, _) =
            http(Request::Backfill { room_id: "!r".into(), from: vec!["$a".into(), "$b".into()], limit: 5 });
        assert_eq!(path, "/_matrix/federation/v1/backfill/%21r?v=%24a&v=%24b&limit=5");
    }
}

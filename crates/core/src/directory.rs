//! Room aliases, the public room directory and the user directory.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Error, ErrorKind, Result};
use crate::network::Request;
use crate::server::{Homeserver, Txn};
use crate::server_name::server_of;
use crate::tables::{ALIASES, PUBLIC_ROOMS, key};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct AliasEntry {
    room_id: String,
    creator: String,
}

/// Checks `#localpart:server` as the spec's alias grammar requires.
pub fn check_alias(alias: &str) -> Result<()> {
    let ok = alias.len() <= 255
        && alias.strip_prefix('#').and_then(|rest| rest.split_once(':')).is_some_and(|(local, server)| {
            !local.is_empty() && !server.is_empty() && !local.chars().any(|c| c.is_whitespace() || c == ':')
        });
    if ok { Ok(()) } else { Err(Error::invalid_param(format!("Invalid room alias {alias:?}"))) }
}

impl Homeserver {
    /// A room id, or the room an alias points to with the servers its server suggests joining
    /// through. Aliases of other servers are asked of them.
    pub async fn resolve_room(self: &Arc<Self>, room: &str) -> Result<(String, Vec<String>)> {
        if room.starts_with('!') {
            return Ok((room.to_owned(), Vec::new()));
        }
        if !room.starts_with('#') {
            return Err(Error::invalid_param(format!("{room:?} is not a room id or alias")));
        }
        check_alias(room)?;
        let server = server_of(room).ok_or_else(|| Error::invalid_param(format!("Invalid room alias {room:?}")))?;
        if server != self.server_name {
            let answer = self.ask(server, Request::Alias { alias: room.to_owned() }).await?;
            let room_id = answer
                .get("room_id")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::not_found("Room alias not found"))?;
            return Ok((room_id.to_owned(), crate::hierarchy::strings(answer.get("servers"))));
        }
        let alias = room.to_owned();
        let room_id = self
            .blocking(move |hs| hs.alias_target(&alias))
            .await?
            .ok_or_else(|| Error::not_found(format!("Room alias {room} not found")))?;
        Ok((room_id, Vec::new()))
    }

    /// The public room directory of `server` (ours when `None` or our name), another server's
    /// asked of it.
    pub async fn public_rooms_of(
        self: &Arc<Self>,
        server: Option<String>,
        limit: Option<usize>,
        since: Option<String>,
        search: Option<String>,
    ) -> Result<Value> {
        match server.filter(|s| *s != self.server_name) {
            Some(server) => self.ask(&server, Request::PublicRooms { limit, since, search }).await,
            None => self.blocking(move |hs| hs.public_rooms(limit, since.as_deref(), search.as_deref())).await,
        }
    }

    pub fn alias_target(&self, alias: &str) -> Result<Option<String>> {
        Ok(self.get_json::<AliasEntry>(ALIASES, &key(&[alias]))?.map(|e| e.room_id))
    }

    pub(crate) fn stage_alias(&self, txn: &mut Txn, alias: &str, room_id: &str, creator: &str) {
        txn.put_json(ALIASES, key(&[alias]), &AliasEntry { room_id: room_id.to_owned(), creator: creator.to_owned() });
    }

    pub(crate) fn stage_publish(&self, txn: &mut Txn, room_id: &str, public: bool) {
        if public {
            txn.batch.put(PUBLIC_ROOMS, key(&[room_id]), Vec::new());
        } else {
            txn.batch.delete(PUBLIC_ROOMS, key(&[room_id]));
        }
    }

    /// Creates an alias on this server for a room.
    pub fn create_alias(&self, user_id: &str, alias: &str, room_id: &str) -> Result<()> {
        check_alias(alias)?;
        if !alias.ends_with(&format!(":{}", self.server_name)) {
            return Err(Error::invalid_param("Room alias must be local"));
        }
        if self.room_info(room_id)?.is_none() {
            return Err(Error::not_found("Unknown room"));
        }
        self.write(|txn| {
            if self.alias_target(alias)?.is_some() {
                return Err(Error::new(ErrorKind::Conflict, format!("Room alias {alias} already exists")));
            }
            self.stage_alias(txn, alias, room_id, user_id);
            Ok(())
        })
    }

    /// Deletes an alias: its creator, a server admin, or a room member allowed to change the
    /// canonical alias may.
    pub fn delete_alias(&self, user_id: &str, alias: &str) -> Result<()> {
        check_alias(alias)?;
        let entry: AliasEntry = self
            .get_json(ALIASES, &key(&[alias]))?
            .ok_or_else(|| Error::not_found(format!("Room alias {alias} not found")))?;
        let admin = self.account(user_id)?.is_some_and(|a| a.admin);
        let mut allowed = entry.creator == user_id || admin;
        if !allowed && let Some(room) = self.load_room(&entry.room_id)? {
            let needed =
                room.required_power(self, |pl| pl.event("m.room.canonical_alias").unwrap_or(pl.state_default()), 50)?;
            allowed =
                room.membership(self, user_id)?.as_deref() == Some("join") && room.power(self, user_id)? >= needed;
        }
        if !allowed {
            return Err(Error::forbidden("You don't have permission to delete the alias."));
        }
        self.write(|txn| {
            txn.batch.delete(ALIASES, key(&[alias]));
            Ok(())
        })?;
        // The room no longer advertises it either (Synapse does the same); a deleter without the
        // power to change the canonical alias still deletes the alias itself.
        if let Err(e) = self.drop_from_canonical_alias(user_id, &entry.room_id, alias) {
            tracing::info!(room_id = %entry.room_id, "the canonical alias event keeps {alias}: {e}");
        }
        Ok(())
    }

    /// Sends a new `m.room.canonical_alias` without `alias`, if the current one names it.
    fn drop_from_canonical_alias(&self, user_id: &str, room_id: &str, alias: &str) -> Result<()> {
        let Some(id) = self.current_state_id(room_id, "m.room.canonical_alias", "")? else { return Ok(()) };
        let Some(Value::Object(mut content)) = self.pdu(&id)?.and_then(|mut p| p.remove("content")) else {
            return Ok(());
        };
        let mut changed = false;
        if content.get("alias").and_then(Value::as_str) == Some(alias) {
            content.remove("alias");
            changed = true;
        }
        if let Some(Value::Array(alt)) = content.get_mut("alt_aliases") {
            let before = alt.len();
            alt.retain(|a| a.as_str() != Some(alias));
            changed |= alt.len() != before;
        }
        if changed {
            self.send_state(user_id, room_id, "m.room.canonical_alias", "", Value::Object(content))?;
        }
        Ok(())
    }

    /// The local aliases pointing at a room.
    pub fn room_aliases(&self, room_id: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in self.db.scan_prefix(ALIASES, &[])? {
            let (k, v) = entry?;
            let e: AliasEntry = serde_json::from_slice(&v)?;
            if e.room_id == room_id
                && let Some(alias) = crate::tables::split(&k).first()
            {
                out.push(alias.to_string());
            }
        }
        Ok(out)
    }

    pub fn set_room_visibility(&self, user_id: &str, room_id: &str, public: bool) -> Result<()> {
        let room = self.room(room_id)?;
        let needed = room.required_power(self, |pl| pl.state_default(), 50)?;
        if room.membership(self, user_id)?.as_deref() != Some("join") || room.power(self, user_id)? < needed {
            return Err(Error::forbidden("You don't have permission to change the room's visibility"));
        }
        self.write(|txn| {
            self.stage_publish(txn, room_id, public);
            Ok(())
        })
    }

    pub fn room_visibility(&self, room_id: &str) -> Result<&'static str> {
        if self.room_info(room_id)?.is_none() {
            return Err(Error::not_found("Unknown room"));
        }
        Ok(if self.db.get(PUBLIC_ROOMS, &key(&[room_id]))?.is_some() { "public" } else { "private" })
    }

    /// The public room list: largest rooms first, `since` an offset token.
    pub fn public_rooms(&self, limit: Option<usize>, since: Option<&str>, search: Option<&str>) -> Result<Value> {
        let mut rooms = Vec::new();
        for entry in self.db.scan_prefix(PUBLIC_ROOMS, &[])? {
            let (k, _) = entry?;
            let Some(room_id) = crate::tables::split(&k).first().map(|s| s.to_string()) else { continue };
            let Some(chunk) = self.public_room_chunk(&room_id)? else { continue };
            if let Some(term) = search.map(str::to_lowercase).filter(|t| !t.is_empty()) {
                let hay = ["name", "topic", "canonical_alias"]
                    .iter()
                    .filter_map(|f| chunk[*f].as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
                    .to_lowercase();
                if !hay.contains(&term) {
                    continue;
                }
            }
            rooms.push(chunk);
        }
        rooms.sort_by(|a, b| {
            b["num_joined_members"]
                .as_u64()
                .cmp(&a["num_joined_members"].as_u64())
                .then_with(|| a["room_id"].as_str().cmp(&b["room_id"].as_str()))
        });
        let total = rooms.len();
        let offset = match since {
            Some(s) => s
                .strip_prefix('o')
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| Error::invalid_param("Invalid since token"))?,
            None => 0usize,
        };
        let limit = limit.unwrap_or(usize::MAX);
        let page: Vec<Value> = rooms.into_iter().skip(offset).take(limit).collect();
        let mut out = json!({ "chunk": page, "total_room_count_estimate": total });
        if offset + limit < total {
            out["next_batch"] = format!("o{}", offset + limit).into();
        }
        if offset > 0 {
            out["prev_batch"] = format!("o{}", offset.saturating_sub(limit)).into();
        }
        Ok(out)
    }

    pub(crate) fn public_room_chunk(&self, room_id: &str) -> Result<Option<Value>> {
        let Some(info) = self.room_info(room_id)? else { return Ok(None) };
        let state = self.state_map(info.state_group)?;
        let get = |kind: &str, field: &str| -> Result<Option<Value>> {
            Ok(self.state_content(&state, kind, "")?.and_then(|c| c.get(field).cloned()))
        };
        let joined = self.members_with(room_id, "join")?.len();
        let mut chunk = json!({
            "room_id": room_id,
            "num_joined_members": joined,
            "world_readable": get("m.room.history_visibility", "history_visibility")?.as_ref().and_then(Value::as_str) == Some("world_readable"),
            "guest_can_join": get("m.room.guest_access", "guest_access")?.as_ref().and_then(Value::as_str) == Some("can_join"),
            "join_rule": get("m.room.join_rules", "join_rule")?.unwrap_or_else(|| "public".into()),
        });
        for (kind, field, out) in [
            ("m.room.name", "name", "name"),
            ("m.room.topic", "topic", "topic"),
            ("m.room.canonical_alias", "alias", "canonical_alias"),
            ("m.room.avatar", "url", "avatar_url"),
        ] {
            if let Some(v) = get(kind, field)? {
                chunk[out] = v;
            }
        }
        if let Some(t) = get("m.room.create", "type")? {
            chunk["room_type"] = t;
        }
        Ok(Some(chunk))
    }

    /// User directory search: local users who share a room with the searcher or are in a
    /// public room, matched on user id and display name.
    pub fn search_users(&self, searcher: &str, term: &str, limit: usize) -> Result<Value> {
        let term = term.to_lowercase();
        let mine: std::collections::HashSet<String> = self.joined_rooms(searcher)?.into_iter().collect();
        let mut results = Vec::new();
        let mut limited = false;
        for user in self.user_ids()? {
            let profile = self.profile(&user)?.unwrap_or_default();
            let name = profile.get("displayname").and_then(Value::as_str).unwrap_or_default();
            if !user.to_lowercase().contains(&term) && !name.to_lowercase().contains(&term) {
                continue;
            }
            let rooms = self.joined_rooms(&user)?;
            let visible = user == searcher
                || rooms.iter().any(|r| mine.contains(r))
                || rooms.iter().any(|r| self.db.get(PUBLIC_ROOMS, &key(&[r])).ok().flatten().is_some());
            if !visible {
                continue;
            }
            if results.len() == limit {
                limited = true;
                break;
            }
            results.push(json!({
                "user_id": user,
                "display_name": profile.get("displayname"),
                "avatar_url": profile.get("avatar_url"),
            }));
        }
        Ok(json!({ "results": results, "limited": limited }))
    }
}

//! Spaces: what this server says about a room it is in when a user or another server walks a
//! space hierarchy (`/hierarchy`): the room's summary, its `m.space.child` events, and
//! whether the asker may preview it; and a user's walk itself ([`Homeserver::hierarchy`]),
//! breadth first, which asks other servers' `/hierarchy` about the rooms this server is not in.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::network::Request;
use crate::server::Homeserver;

/// The most rooms one walk visits; pages are cut from them.
const MAX_ROOMS: usize = 1000;

/// What a user asks of a walk: a page of `limit` rooms from `offset`, at most `max_depth`
/// below the root, and only suggested children if `suggested_only`.
#[derive(Clone, Copy, Debug)]
pub struct Walk {
    pub offset: usize,
    pub limit: usize,
    pub max_depth: usize,
    pub suggested_only: bool,
}

/// Who asks to preview a room.
#[derive(Clone, Copy, Debug)]
pub enum Asker<'a> {
    User(&'a str),
    Server(&'a str),
    /// A client without an access token (the room summary allows it for open rooms).
    Anonymous,
}

/// A child named by an `m.space.child` event, with the servers to reach it through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Child {
    pub room_id: String,
    pub via: Vec<String>,
    pub suggested: bool,
}

impl Homeserver {
    /// A space's `m.space.child` events with a non-empty `via`, stripped; none for a room that
    /// is not a space.
    fn space_children_state(&self, room_id: &str) -> Result<Vec<Value>> {
        let Some(info) = self.room_info(room_id)? else { return Ok(Vec::new()) };
        let state = self.state_map(info.state_group)?;
        let room_type = self.state_content(&state, "m.room.create", "")?.and_then(|c| c.get("type").cloned());
        if room_type.as_ref().and_then(Value::as_str) != Some("m.space") {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let kind = "m.space.child";
        for (state_key, id) in self.state_of_type(&state, kind)? {
            let Some(pdu) = self.pdu(&id)? else { continue };
            if pdu.get("content").and_then(|c| c.get("via")).and_then(Value::as_array).is_none_or(|v| v.is_empty()) {
                continue;
            }
            out.push(json!({
                "type": kind, "state_key": state_key, "content": pdu["content"], "sender": pdu["sender"],
                "origin_server_ts": pdu["origin_server_ts"],
            }));
        }
        Ok(out)
    }

    /// The summary of a room this server is in, as `/hierarchy` returns it (with
    /// `children_state`), or `None` if this server is not in the room.
    pub fn space_room_chunk(&self, room_id: &str) -> Result<Option<Value>> {
        if !self.is_resident(room_id)? {
            return Ok(None);
        }
        let Some(mut chunk) = self.public_room_chunk(room_id)? else { return Ok(None) };
        chunk["children_state"] = self.space_children_state(room_id)?.into();
        chunk["room_version"] = self.room_version(room_id)?.into();
        if let Some(id) = self.current_state_id(room_id, "m.room.encryption", "")?
            && let Some(alg) = self.pdu(&id)?.and_then(|p| p.get("content")?.get("algorithm").cloned())
        {
            chunk["encryption"] = alg;
        }
        if let Some(id) = self.current_state_id(room_id, "m.room.join_rules", "")?
            && let Some(content) = self.pdu(&id)?.and_then(|mut p| p.remove("content"))
        {
            let allowed = allowed_rooms(&content);
            if !allowed.is_empty() {
                chunk["allowed_room_ids"] = allowed.into();
            }
        }
        Ok(Some(chunk))
    }

    /// The children a room's `children_state` names.
    pub fn space_children(chunk: &Value, suggested_only: bool) -> Vec<Child> {
        let mut out = Vec::new();
        for event in chunk.get("children_state").and_then(Value::as_array).into_iter().flatten() {
            let (Some(room_id), Some(content)) = (event.get("state_key").and_then(Value::as_str), event.get("content"))
            else {
                continue;
            };
            let via = strings(content.get("via"));
            let suggested = content.get("suggested").and_then(Value::as_bool).unwrap_or(false);
            if via.is_empty() || (suggested_only && !suggested) {
                continue;
            }
            out.push(Child { room_id: room_id.to_owned(), via, suggested });
        }
        out
    }

    /// Whether the asker may preview a room this server is in: a member (or, for a server, one
    /// of its users is), the room is world readable, or its join rules let anyone knock or
    /// join (for restricted rooms: a member of one of the allowed rooms).
    pub fn may_preview(&self, asker: Asker<'_>, room_id: &str) -> Result<bool> {
        let member = match asker {
            Asker::User(user) => {
                matches!(self.current_membership(room_id, user)?.as_deref(), Some("join" | "invite"))
            }
            Asker::Server(server) => self.server_in_room(room_id, server)?,
            Asker::Anonymous => false,
        };
        if member {
            return Ok(true);
        }
        let content = |kind: &str| -> Result<Option<Value>> {
            let Some(id) = self.current_state_id(room_id, kind, "")? else { return Ok(None) };
            Ok(self.pdu(&id)?.and_then(|mut p| p.remove("content")))
        };
        let visibility = content("m.room.history_visibility")?;
        if visibility.as_ref().and_then(|c| c.get("history_visibility")?.as_str()) == Some("world_readable") {
            return Ok(true);
        }
        let rules = content("m.room.join_rules")?.unwrap_or_default();
        match rules.get("join_rule").and_then(Value::as_str).unwrap_or("public") {
            "public" | "knock" | "knock_restricted" => Ok(true),
            "restricted" => match asker {
                Asker::User(user) => self.joined_any(user, &allowed_rooms(&rules)),
                // Another server decides for its own users with `allowed_room_ids`.
                Asker::Server(_) => Ok(true),
                Asker::Anonymous => Ok(false),
            },
            _ => Ok(false),
        }
    }

    /// Whether `user_id` is joined to one of `rooms`.
    pub fn joined_any(&self, user_id: &str, rooms: &[String]) -> Result<bool> {
        for room in rooms {
            if self.current_membership(room, user_id)?.as_deref() == Some("join") {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// The rooms whose members a restricted join rule (`m.room.join_rules` content) lets in.
pub fn allowed_rooms(join_rules: &Value) -> Vec<String> {
    join_rules
        .get("allow")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|a| a["type"] == "m.room_membership")
        .filter_map(|a| a.get("room_id").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// The strings of a JSON array (`via`, `allowed_room_ids`); non-strings are skipped.
pub fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array).into_iter().flatten().filter_map(|s| s.as_str().map(str::to_owned)).collect()
}

impl Homeserver {
    /// `/hierarchy` for another server: a room of a space this server is in, with those of its
    /// children this server is in, summarised, and those `server` may not preview listed as
    /// inaccessible.
    pub fn hierarchy_for_server(&self, server: &str, room_id: &str, suggested_only: bool) -> Result<Value> {
        let asker = Asker::Server(server);
        let not_found = || Error::not_found("Unknown room, or not one your server may preview");
        if !self.is_resident(room_id)? || !self.may_preview(asker, room_id)? {
            return Err(not_found());
        }
        let chunk = self.space_room_chunk(room_id)?.ok_or_else(not_found)?;
        let (mut children, mut inaccessible) = (Vec::new(), Vec::new());
        for child in Homeserver::space_children(&chunk, suggested_only) {
            if !self.is_resident(&child.room_id)? {
                continue;
            }
            if !self.may_preview(asker, &child.room_id)? {
                inaccessible.push(child.room_id);
                continue;
            }
            if let Some(mut summary) = self.space_room_chunk(&child.room_id)? {
                if let Some(obj) = summary.as_object_mut() {
                    obj.remove("children_state");
                }
                children.push(summary);
            }
        }
        Ok(json!({ "room": chunk, "children": children, "inaccessible_children": inaccessible }))
    }

    /// `/hierarchy` for `user`: the rooms of the space under `root` the user may preview, a
    /// page of them (`rooms`, and `next_batch` while more remain).
    pub async fn hierarchy(self: &Arc<Self>, user: &str, root: &str, walk: Walk) -> Result<Value> {
        let (u, r) = (user.to_owned(), root.to_owned());
        let root_chunk = self
            .blocking(move |hs| {
                Ok(match hs.space_room_chunk(&r)? {
                    Some(c) if hs.may_preview(Asker::User(&u), &r)? => Some(c),
                    _ => None,
                })
            })
            .await?
            .ok_or_else(|| Error::forbidden("You may not preview this room"))?;
        let mut rooms = Vec::new();
        let mut seen = HashSet::from([root.to_owned()]);
        // Summaries of rooms this server is not in, as their parents' servers gave them.
        let mut remote: HashMap<String, Value> = HashMap::new();
        let mut queue = VecDeque::from([(root_chunk, 0usize)]);
        while let Some((chunk, depth)) = queue.pop_front() {
            let children = if depth < walk.max_depth {
                Homeserver::space_children(&chunk, walk.suggested_only)
            } else {
                Vec::new()
            };
            rooms.push(chunk);
            if rooms.len() >= MAX_ROOMS {
                break;
            }
            for child in children {
                if !seen.insert(child.room_id.clone()) {
                    continue;
                }
                let expand = depth + 1 < walk.max_depth;
                if let Some(chunk) = self.child_summary(user, &child, walk.suggested_only, expand, &mut remote).await? {
                    queue.push_back((chunk, depth + 1));
                }
            }
        }
        let page: Vec<Value> = rooms.iter().skip(walk.offset).take(walk.limit).cloned().collect();
        let mut out = json!({ "rooms": page });
        if walk.offset + walk.limit < rooms.len() {
            out["next_batch"] = format!("h{}", walk.offset + walk.limit).into();
        }
        Ok(out)
    }

    /// A child room's summary if the user may preview it: ours for a room this server is in,
    /// else another server's (its own `/hierarchy` when the child's children are needed, or the
    /// summary its parent's server gave).
    async fn child_summary(
        self: &Arc<Self>,
        user: &str,
        child: &Child,
        suggested_only: bool,
        expand: bool,
        remote: &mut HashMap<String, Value>,
    ) -> Result<Option<Value>> {
        let (u, room) = (user.to_owned(), child.room_id.clone());
        let local = self
            .blocking(move |hs| {
                Ok(match hs.space_room_chunk(&room)? {
                    Some(chunk) => Some(hs.may_preview(Asker::User(&u), &room)?.then_some(chunk)),
                    None => None,
                })
            })
            .await?;
        if let Some(found) = local {
            return Ok(found);
        }
        let mut chunk = remote.remove(&child.room_id);
        if (chunk.is_none() || expand) && self.network().is_ok() {
            match self.remote_hierarchy(&child.room_id, &child.via, suggested_only).await {
                Ok(answer) => {
                    for c in answer.get("children").and_then(Value::as_array).into_iter().flatten() {
                        if let Some(id) = c.get("room_id").and_then(Value::as_str) {
                            remote.entry(id.to_owned()).or_insert_with(|| c.clone());
                        }
                    }
                    chunk = answer.get("room").cloned();
                }
                Err(e) => tracing::info!(room_id = %child.room_id, "hierarchy of a remote room: {e}"),
            }
        }
        let Some(chunk) = chunk else { return Ok(None) };
        // A restricted room another server describes: the user must be in one of the allowed rooms.
        if matches!(chunk["join_rule"].as_str(), Some("restricted")) && chunk["world_readable"] != true {
            let (u, allowed) = (user.to_owned(), strings(chunk.get("allowed_room_ids")));
            if !self.blocking(move |hs| hs.joined_any(&u, &allowed)).await? {
                return Ok(None);
            }
        }
        Ok(Some(with_children_state(chunk)))
    }

    /// `/hierarchy` of a room this server is not in, from the first of `via` that answers:
    /// the answer as given (`room`, `children`, `inaccessible_children`).
    pub(crate) async fn remote_hierarchy(&self, room_id: &str, via: &[String], suggested_only: bool) -> Result<Value> {
        let mut last = Error::not_found("No server to ask about this room");
        for server in via.iter().filter(|s| **s != self.server_name) {
            let request = Request::Hierarchy { room_id: room_id.to_owned(), suggested_only };
            match self.ask(server, request).await {
                Ok(answer) if answer.get("room").is_some_and(Value::is_object) => return Ok(answer),
                Ok(_) => last = Error::bad_json("the hierarchy answer has no room"),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// Clients are promised `children_state` on every room.
fn with_children_state(mut chunk: Value) -> Value {
    if chunk.get("children_state").is_none() {
        chunk["children_state"] = json!([]);
    }
    chunk
}

//! Rule 5: `m.room.member` events.

use super::{Inputs, PowerCtx, Rejection, membership_of, third_party_invite};
use crate::RoomVersion;
use crate::event::{AuthEvent, Content, JoinRule, Membership};

pub(super) fn check(v: &RoomVersion, event: &AuthEvent, s: &Inputs<'_>, power: &PowerCtx<'_>) -> Result<(), Rejection> {
    let Content::Member(content) = &event.content else {
        return Err(Rejection("m.room.member without member content"));
    };
    // 5.1
    let target = event.state_key().ok_or(Rejection("m.room.member without a state_key"))?;
    let membership = content.membership.ok_or(Rejection("m.room.member without a membership"))?;
    let sender = &*event.sender;
    let target_membership = membership_of(s.target).unwrap_or(Membership::Leave);
    let sender_membership = membership_of(s.sender).unwrap_or(Membership::Leave);
    // With no join rules event the spec is silent; Synapse takes `invite` (ruma rejects every
    // join and knock), and Tandem does what Synapse does.
    let join_rule = match s.join_rules.map(|jr| &jr.content) {
        Some(Content::JoinRules(rule)) => *rule,
        _ => JoinRule::Invite,
    };

    match membership {
        Membership::Join => {
            // 5.3.1
            if let [only_prev] = &*event.prev_events
                && let Some(create) = s.create
                && *only_prev == create.nid
                && super::is_original_creator(v, create, target)
            {
                return Ok(());
            }
            // 5.3.2
            if sender != target {
                return Err(Rejection("join: the sender is not the state_key"));
            }
            // 5.3.3
            if sender_membership == Membership::Ban {
                return Err(Rejection("join: the sender is banned"));
            }
            // 5.3.4
            if join_rule == JoinRule::Invite || (v.knocking && join_rule == JoinRule::Knock) {
                return if matches!(target_membership, Membership::Invite | Membership::Join) {
                    Ok(())
                } else {
                    Err(Rejection("join: invite-only room and the user is not invited"))
                };
            }
            // 5.3.5
            if (v.restricted_join && join_rule == JoinRule::Restricted)
                || (v.knock_restricted && join_rule == JoinRule::KnockRestricted)
            {
                if matches!(target_membership, Membership::Invite | Membership::Join) {
                    return Ok(());
                }
                let authoriser = content
                    .join_authorised_via_users_server
                    .as_deref()
                    .ok_or(Rejection("restricted join without join_authorised_via_users_server"))?;
                if membership_of(s.authoriser) != Some(Membership::Join)
                    || power.user(authoriser) < power.levels().invite()
                {
                    return Err(Rejection("restricted join authorised by a user who cannot invite"));
                }
                return Ok(());
            }
            // 5.3.6, 5.3.7
            if join_rule == JoinRule::Public {
                Ok(())
            } else {
                Err(Rejection("join: the join rule does not allow joining"))
            }
        }
        Membership::Invite => {
            // 5.4.1
            if let Some(tpi) = &content.third_party_invite {
                if target_membership == Membership::Ban {
                    return Err(Rejection("third-party invite: the target is banned"));
                }
                return third_party_invite::check(event, target, tpi.as_ref(), s.third_party_invite);
            }
            // 5.4.2
            if sender_membership != Membership::Join {
                return Err(Rejection("invite: the sender is not joined"));
            }
            // 5.4.3
            if matches!(target_membership, Membership::Join | Membership::Ban) {
                return Err(Rejection("invite: the target is joined or banned"));
            }
            // 5.4.4, 5.4.5
            if power.user(sender) >= power.levels().invite() {
                Ok(())
            } else {
                Err(Rejection("invite: the sender is below the invite level"))
            }
        }
        Membership::Leave => {
            // 5.5.1
            if sender == target {
                let may_leave = matches!(target_membership, Membership::Invite | Membership::Join)
                    || (v.knocking && target_membership == Membership::Knock);
                return if may_leave { Ok(()) } else { Err(Rejection("leave: not invited, joined or knocking")) };
            }
            // 5.5.2
            if sender_membership != Membership::Join {
                return Err(Rejection("kick: the sender is not joined"));
            }
            let sender_power = power.user(sender);
            // 5.5.3
            if target_membership == Membership::Ban && sender_power < power.levels().ban() {
                return Err(Rejection("unban: the sender is below the ban level"));
            }
            // 5.5.4, 5.5.5
            if sender_power >= power.levels().kick() && power.user(target) < sender_power {
                Ok(())
            } else {
                Err(Rejection("kick: the sender is below the kick level or the target's level"))
            }
        }
        Membership::Ban => {
            // 5.6.1
            if sender_membership != Membership::Join {
                return Err(Rejection("ban: the sender is not joined"));
            }
            // 5.6.2, 5.6.3
            let sender_power = power.user(sender);
            if sender_power >= power.levels().ban() && power.user(target) < sender_power {
                Ok(())
            } else {
                Err(Rejection("ban: the sender is below the ban level or the target's level"))
            }
        }
        Membership::Knock if v.knocking => {
            // 5.7.1
            if join_rule != JoinRule::Knock && !(v.knock_restricted && join_rule == JoinRule::KnockRestricted) {
                return Err(Rejection("knock: the join rule does not allow knocking"));
            }
            // 5.7.2
            if sender != target {
                return Err(Rejection("knock: the sender is not the state_key"));
            }
            // 5.7.3, 5.7.4
            if matches!(sender_membership, Membership::Ban | Membership::Invite | Membership::Join) {
                Err(Rejection("knock: the sender is banned, invited or joined"))
            } else {
                Ok(())
            }
        }
        // 5.8
        Membership::Knock | Membership::Unknown => Err(Rejection("unknown membership")),
    }
}

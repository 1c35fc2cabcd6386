//! OpenID tokens (`/user/{userId}/openid/request_token`): a token a user hands a third party
//! (a widget, Element Call's focus) so that it can learn who the user is from this server's
//! federation API (`/openid/userinfo`). It proves identity and grants nothing else; it lives
//! an hour, as in Synapse.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::server::Homeserver;
use crate::tables::{OPENID_TOKENS, key};

/// How long a token is good for.
pub const LIFETIME_MS: u64 = 3600 * 1000;

#[derive(Debug, Serialize, Deserialize)]
struct OpenIdToken {
    user_id: String,
    expires_at: u64,
}

impl Homeserver {
    /// A new token vouching for `user_id`, which must be the requester.
    pub fn request_openid_token(&self, requester: &str, user_id: &str) -> Result<String> {
        if requester != user_id {
            return Err(Error::forbidden("Cannot request tokens for other users."));
        }
        let token = Self::random_string(24);
        let entry = OpenIdToken { user_id: user_id.to_owned(), expires_at: Self::now_ms() + LIFETIME_MS };
        self.write(|txn| {
            // Expired tokens go when new ones are made, so the table stays small.
            for (k, old) in self.scan_json::<OpenIdToken>(OPENID_TOKENS, &[])? {
                if old.expires_at <= Self::now_ms() {
                    txn.batch.delete(OPENID_TOKENS, k.to_vec());
                }
            }
            txn.put_json(OPENID_TOKENS, key(&[&token]), &entry);
            Ok(())
        })?;
        Ok(token)
    }

    /// Whom a token vouches for, if it is known and has not expired.
    pub fn openid_user(&self, token: &str) -> Result<Option<String>> {
        let entry: Option<OpenIdToken> = self.get_json(OPENID_TOKENS, &key(&[token]))?;
        Ok(entry.filter(|e| e.expires_at > Self::now_ms()).map(|e| e.user_id))
    }
}

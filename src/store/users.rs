//! Linked Withings accounts: one file per user with its tokens, in
//! `users/<userid>.json`.

use super::per_user::UserFile;
use crate::error::Fix;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserRecord {
    pub userid: String,
    pub access_token: Secret,
    /// Unix seconds after which the access token must not be used.
    pub access_expires_at: i64,
    pub refresh_token: Secret,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub linked_at: i64,
    /// Set when Withings rejected the refresh token: the worker stops calling
    /// Withings for this user until it is linked again.
    #[serde(default)]
    pub needs_reauth: bool,
}

impl UserFile for UserRecord {
    const IF_DAMAGED: Fix = Fix::Relink;

    fn owner(&self) -> Option<&str> {
        Some(&self.userid)
    }
}

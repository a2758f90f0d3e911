//! `notify subscribe` (facts sheet §3.1): per user and appli, with the
//! user's Bearer token and no signature. Withings HEAD-checks the callback
//! URL before answering, and answers 293 when that check fails.

use super::api::Api;
use crate::error::Result;
use crate::secret::Secret;

pub fn subscribe(api: &Api, token: &Secret, callback_url: &str, appli: u32) -> Result<()> {
    let appli = appli.to_string();
    api.post(
        "notify subscribe",
        "/notify",
        Some(token),
        &[
            ("action", "subscribe"),
            ("callbackurl", callback_url),
            ("appli", &appli),
            ("comment", "withings-relay"),
        ],
    )?;
    Ok(())
}

//! `notify subscribe`, `list` and `revoke` (facts sheet §3.1): per user,
//! with the user's Bearer token and no signature. Withings HEAD-checks the
//! callback URL before answering a subscribe, and answers 293 when that
//! check fails. Every call names both the URL and the appli: the relay
//! never revokes everything a user has (Home Assistant's revoke-all churn,
//! §3.1).

use super::api::Api;
use super::lenient;
use crate::error::{Error, Result, WithingsKind};
use crate::secret::Secret;
use serde::Deserialize;
use serde_json::Value;

/// The `comment` the relay subscribes with; `notify list` shows it back.
pub const OWN_COMMENT: &str = "withings-relay";

/// One subscription as `notify list` shows it. `expires` and anything
/// else Withings adds are ignored.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Profile {
    /// A number in the docs; read as text too.
    #[serde(deserialize_with = "appli")]
    pub appli: u32,
    pub callbackurl: String,
    /// Optional: older answers and other apps may leave it out.
    #[serde(default, deserialize_with = "lenient::label")]
    pub comment: Option<String>,
}

fn appli<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<u32, D::Error> {
    u32::try_from(lenient::int(d)?).map_err(|_| serde::de::Error::custom("appli out of range"))
}

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
            ("comment", OWN_COMMENT),
        ],
    )?;
    Ok(())
}

/// Every subscription of the user, all applis at once (no `appli` sent).
pub fn list(api: &Api, token: &Secret) -> Result<Vec<Profile>> {
    let body = api.post("notify list", "/notify", Some(token), &[("action", "list")])?;
    parse_list(body)
}

/// Revokes one (URL, appli) pair, the exact URL string it was subscribed
/// with (facts sheet §3.2).
pub fn revoke(api: &Api, token: &Secret, callback_url: &str, appli: u32) -> Result<()> {
    let appli = appli.to_string();
    api.post(
        "notify revoke",
        "/notify",
        Some(token),
        &[
            ("action", "revoke"),
            ("callbackurl", callback_url),
            ("appli", &appli),
        ],
    )?;
    Ok(())
}

/// Pure: the profiles of a `list` body. No body or no `profiles` is an
/// empty list; a profile without a URL or appli is skipped (logged), since
/// the relay can neither match nor revoke it; a `profiles` that is not a
/// list means the API changed, and nothing is decided on it.
pub fn parse_list(body: Value) -> Result<Vec<Profile>> {
    let profiles = match body {
        Value::Null => return Ok(Vec::new()),
        Value::Object(mut map) => map.remove("profiles").unwrap_or(Value::Null),
        other => other,
    };
    let entries = match profiles {
        Value::Null => return Ok(Vec::new()),
        Value::Array(entries) => entries,
        _ => {
            return Err(Error::withings(
                "notify list",
                WithingsKind::Malformed("`profiles` is not a list".into()),
            ))
        }
    };
    Ok(entries
        .into_iter()
        .filter_map(|entry| match serde_json::from_value::<Profile>(entry) {
            Ok(p) => Some(p),
            Err(e) => {
                log::debug!("notify list: skipped a subscription the relay cannot read: {e}");
                None
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn list_reads_numbers_text_and_missing_fields() {
        let body = json!({"profiles": [
            {"appli": 1, "callbackurl": "https://a/x", "comment": "withings-relay", "expires": 2147483647},
            {"appli": "4", "callbackurl": "https://b/y", "extra": [1]},
            {"appli": 2, "callbackurl": "https://c/z", "comment": null, "expires": "never"},
        ]});
        let list = parse_list(body).unwrap();
        assert_eq!(
            list,
            [
                Profile {
                    appli: 1,
                    callbackurl: "https://a/x".into(),
                    comment: Some(OWN_COMMENT.into())
                },
                Profile {
                    appli: 4,
                    callbackurl: "https://b/y".into(),
                    comment: None
                },
                Profile {
                    appli: 2,
                    callbackurl: "https://c/z".into(),
                    comment: None
                },
            ]
        );
    }

    #[test]
    fn an_empty_or_partial_list_is_read_as_far_as_it_goes() {
        assert!(parse_list(Value::Null).unwrap().is_empty());
        assert!(parse_list(json!({})).unwrap().is_empty());
        assert!(parse_list(json!({"profiles": []})).unwrap().is_empty());
        let list = parse_list(json!({"profiles": [
            {"appli": 1},
            {"callbackurl": "https://a/x"},
            {"appli": -1, "callbackurl": "https://a/x"},
            "junk",
            {"appli": 1, "callbackurl": "https://a/x"},
        ]}))
        .unwrap();
        assert_eq!(list.len(), 1, "{list:?}");
        assert!(parse_list(json!({"profiles": "none"})).is_err());
    }
}

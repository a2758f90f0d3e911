//! `measure getmeas` (facts sheet §2): the request and a lenient reading of
//! its answer. Unknown keys are ignored; ids may be strings or integers.

use super::api::Api;
use crate::error::{Error, Result};
use crate::lenient;
use crate::secret::Secret;
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Measure {
    #[serde(deserialize_with = "lenient::int")]
    pub value: i64,
    #[serde(rename = "type", deserialize_with = "lenient::int")]
    pub type_: i64,
    #[serde(deserialize_with = "lenient::int")]
    pub unit: i64,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub position: Option<i64>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct MeasureGroup {
    #[serde(deserialize_with = "lenient::int")]
    pub grpid: i64,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub attrib: Option<i64>,
    #[serde(deserialize_with = "lenient::int")]
    pub date: i64,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub created: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub modified: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub category: Option<i64>,
    #[serde(default)]
    pub deviceid: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub measures: Vec<Measure>,
}

impl MeasureGroup {
    /// When the group last changed; groups without `modified` count as
    /// changed when taken.
    pub fn modified(&self) -> i64 {
        self.modified.unwrap_or(self.date)
    }
}

#[derive(Debug, Deserialize)]
pub struct Page {
    #[serde(default)]
    pub measuregrps: Vec<MeasureGroup>,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub more: bool,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub offset: Option<i64>,
}

pub fn parse_page(body: serde_json::Value) -> Result<Page> {
    serde_json::from_value(body)
        .map_err(|e| Error::Transport(format!("measure getmeas: unexpected answer ({e})")))
}

/// One page of real measurements (category 1, not goals) changed since
/// `lastupdate`.
pub fn getmeas(api: &Api, token: &Secret, lastupdate: i64, offset: Option<i64>) -> Result<Page> {
    let lastupdate = lastupdate.to_string();
    let offset = offset.map(|o| o.to_string());
    let mut form = vec![
        ("action", "getmeas"),
        ("category", "1"),
        ("lastupdate", lastupdate.as_str()),
    ];
    if let Some(o) = &offset {
        form.push(("offset", o));
    }
    parse_page(api.post("measure getmeas", "/measure", Some(token), &form)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_real_shaped_page_with_extra_keys_and_nulls() {
        let body = serde_json::json!({
            "updatetime": 1700000000, "timezone": "Europe/Berlin",
            "measuregrps": [{
                "grpid": 2726375354i64, "attrib": 0, "date": 1700000000, "created": 1700000010,
                "modified": 1700000020, "category": 1, "deviceid": null, "hash_deviceid": null,
                "model": null, "modelid": 5, "comment": null, "apppfmid": 7,
                "measures": [{"value": 65750, "type": 1, "unit": -3, "algo": 0, "fm": 3}]
            }],
            "more": 1, "offset": 1
        });
        let page = parse_page(body).unwrap();
        assert!(page.more);
        assert_eq!(page.offset, Some(1));
        let g = &page.measuregrps[0];
        assert_eq!(g.grpid, 2_726_375_354);
        assert_eq!(g.deviceid, None);
        assert_eq!(g.modified(), 1_700_000_020);
        assert_eq!(
            g.measures[0],
            Measure {
                value: 65750,
                type_: 1,
                unit: -3,
                position: None
            }
        );
    }

    #[test]
    fn an_empty_body_is_an_empty_last_page() {
        let page = parse_page(serde_json::json!({})).unwrap();
        assert!(page.measuregrps.is_empty());
        assert!(!page.more);
    }

    #[test]
    fn a_group_without_grpid_is_refused() {
        let body = serde_json::json!({"measuregrps": [{"date": 1}]});
        assert!(parse_page(body).is_err());
    }
}

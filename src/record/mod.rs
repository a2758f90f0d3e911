//! The measurement object every output receives: one per measure group,
//! with exact decimal values and stable names. This shape is the public
//! contract documented in the README.

pub mod decimal;
pub mod meastype;
pub mod position;
#[cfg(test)]
mod real_data;

use crate::record::decimal::Decimal;

use crate::timefmt::rfc3339_utc;
use crate::withings::measure::MeasureGroup;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;

#[derive(Debug, Serialize)]
pub struct Record {
    pub userid: String,
    pub grpid: i64,
    /// When the measurement was taken, unix seconds.
    pub date: i64,
    /// `date` as RFC 3339 in UTC.
    pub time: String,
    pub modified: i64,
    /// 1 means the device could not tell whose measurement it is
    /// (facts sheet §2.1); kept so consumers can choose.
    pub attrib: Option<i64>,
    pub category: Option<i64>,
    pub deviceid: Option<String>,
    pub model: Option<String>,
    pub measures: Vec<RecordMeasure>,
}

#[derive(Debug, Serialize)]
pub struct RecordMeasure {
    #[serde(rename = "type")]
    pub type_: i64,
    pub name: Cow<'static, str>,
    pub value: Decimal,
    pub unit: Option<&'static str>,
    /// As Withings sent it, whole-body 6 and 7 included: the line is the
    /// record of what arrived (a Body Scan tells itself apart from a
    /// Body+ by it), while topics and hook variables use the measure's
    /// key, where a whole-body position adds nothing (`position.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
}

impl Record {
    pub fn from_group(userid: &str, group: &MeasureGroup) -> Record {
        Record {
            userid: userid.to_string(),
            grpid: group.grpid,
            date: group.date,
            time: rfc3339_utc(group.date),
            modified: group.modified(),
            attrib: group.attrib,
            category: group.category,
            deviceid: group.deviceid.clone(),
            model: group.model.clone(),
            measures: group
                .measures
                .iter()
                .map(|m| RecordMeasure {
                    type_: m.type_,
                    name: meastype::name(m.type_),
                    value: Decimal::new(m.value, m.exponent),
                    unit: meastype::unit(m.type_),
                    position: m.position,
                })
                .collect(),
        }
    }

    /// The record as one line of JSON, without the newline.
    pub fn to_json_line(&self) -> String {
        // Serializing plain structs of strings and integers cannot fail.
        serde_json::to_string(self).expect("record serializes")
    }
}

/// A record as a sink reads it back from the outbox: values stay the exact
/// JSON number text.
#[derive(Debug, Deserialize)]
pub struct RecordView<'a> {
    pub userid: String,
    pub grpid: i64,
    pub date: i64,
    pub time: String,
    #[serde(default)]
    pub attrib: Option<i64>,
    #[serde(borrow)]
    pub measures: Vec<MeasureView<'a>>,
}

/// Whether a group's `attrib` says the device could not tell whose it is
/// (facts sheet §2.1): only 1, "ambiguous". Every other documented value
/// is the user's own (0 and 8 from a device, 2 and 4 by hand, 5, 7, 15),
/// and so is 17, undocumented but seen on real BPM data and read as 15 by
/// aiowithings. Values the table does not list stay the user's too:
/// captures from 2014 carry -1 on the user's own blood-pressure readings,
/// with the user's own comments; hiding them would drop real readings
/// without a word, while the JSON line keeps `attrib` for anyone stricter.
pub fn is_unassigned(attrib: Option<i64>) -> bool {
    attrib == Some(1)
}

#[derive(Debug, Deserialize)]
pub struct MeasureView<'a> {
    #[serde(rename = "type")]
    pub type_: i64,
    pub name: String,
    #[serde(borrow)]
    pub value: &'a RawValue,
    pub unit: Option<String>,
    #[serde(default)]
    pub position: Option<i64>,
}

impl<'a> RecordView<'a> {
    /// Reads a record line. The outbox knows the record's path, so the
    /// error names none; a line that does not parse is a damaged outbox
    /// record, moved aside by the couriers.
    pub fn parse(line: &'a str) -> crate::error::Result<RecordView<'a>> {
        use crate::error::{Error, Fix};
        serde_json::from_str(line)
            .map_err(|e| Error::corrupt("outbox record", e, Fix::OutboxRecord))
    }

    /// The measures by key, each key once: the first measure of a key
    /// wins. A Body Scan group lists its whole-body fat mass twice (the
    /// same value), and a whole-body position adds nothing to a key, so
    /// one group can hold a key twice; each output takes the same one.
    pub fn keyed(&self) -> Vec<(String, &MeasureView<'a>)> {
        let mut out: Vec<(String, &MeasureView<'a>)> = Vec::new();
        for m in &self.measures {
            let key = m.key();
            if !out.iter().any(|(k, _)| *k == key) {
                out.push((key, m));
            }
        }
        out
    }
}

impl MeasureView<'_> {
    /// The measure's name, with the body part for segmental measures:
    /// `weight`, `muscle_mass_left_arm` (see `position.rs`).
    pub fn key(&self) -> String {
        position::key(self.type_, &self.name, self.position)
    }

    /// The exact number as JSON text: `72.5`.
    pub fn number(&self) -> &str {
        self.value.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::withings::measure::Measure;

    #[test]
    fn a_weigh_in_becomes_the_documented_json() {
        let group = MeasureGroup {
            grpid: 2_726_375_354,
            attrib: Some(0),
            date: 1_530_576_000,
            created: Some(1_530_576_005),
            modified: Some(1_530_576_010),
            category: Some(1),
            deviceid: None,
            model: Some("Body+".into()),
            measures: vec![
                Measure {
                    value: 72500,
                    type_: 1,
                    exponent: -3,
                    position: None,
                },
                Measure {
                    value: 2315,
                    type_: 6,
                    exponent: -2,
                    position: None,
                },
                Measure {
                    value: 7,
                    type_: 999,
                    exponent: 0,
                    position: Some(12),
                },
            ],
        };
        let line = Record::from_group("12345", &group).to_json_line();
        let view = RecordView::parse(&line).unwrap();
        let keys: Vec<String> = view.measures.iter().map(MeasureView::key).collect();
        assert_eq!(keys, ["weight", "fat_ratio", "type_999_torso"]);
        assert_eq!(view.measures[0].number(), "72.5");
        assert_eq!(
            line,
            concat!(
                r#"{"userid":"12345","grpid":2726375354,"date":1530576000,"time":"2018-07-03T00:00:00Z","#,
                r#""modified":1530576010,"attrib":0,"category":1,"deviceid":null,"model":"Body+","measures":["#,
                r#"{"type":1,"name":"weight","value":72.5,"unit":"kg"},"#,
                r#"{"type":6,"name":"fat_ratio","value":23.15,"unit":"%"},"#,
                r#"{"type":999,"name":"type_999","value":7,"unit":null,"position":12}]}"#
            )
        );
    }
}

//! The measurement object every output receives: one per measure group,
//! with exact decimal values and stable names. This shape is the public
//! contract documented in the README.

pub mod decimal;
pub mod meastype;

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
    #[serde(borrow)]
    pub measures: Vec<MeasureView<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct MeasureView<'a> {
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
}

impl MeasureView<'_> {
    /// The measure's name, made unique for segmental measures, which come
    /// once per body part: `muscle_mass_segment_p12`.
    pub fn key(&self) -> String {
        match self.position {
            Some(p) => format!("{}_p{p}", self.name),
            None => self.name.clone(),
        }
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
        assert_eq!(keys, ["weight", "fat_ratio", "type_999_p12"]);
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

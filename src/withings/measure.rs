//! `measure getmeas` (facts sheet §2): the request and a lenient reading of
//! its answer. The page around the groups (`measuregrps`, `more`, `offset`)
//! must parse; each group is then read on its own, so one group of an
//! unexpected shape is rejected, with the field that is wrong and its JSON
//! verbatim, while the others of the page go on. Unknown keys are ignored;
//! ids may be strings or integers.

use super::api::{self, Api};
use crate::error::{Error, Result, WithingsKind};
use crate::secret::Secret;
use crate::withings::lenient;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The largest |exponent| (the power of ten of a measure, sent as `unit`,
/// facts sheet §2) accepted. Real answers use -4 to 0 (the 2062 groups of
/// joostlek/python-withings' `measurement_list.json`, and every other
/// capture in tests/fixtures); with a mantissa of at most 19 digits, ±30
/// already spans more than any quantity a scale, cuff or thermometer
/// reports, while anything further out is garbage that would print as a
/// huge or vanishing number. Such a group is rejected, not relayed.
pub const MAX_EXPONENT: i64 = 30;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Measure {
    pub value: i64,
    pub type_: i64,
    /// The power of ten: the measure is `value × 10^exponent`. Withings
    /// calls it `unit` (facts sheet §2); the physical unit comes from the
    /// type ([`crate::record::meastype::unit`]). Within ±[`MAX_EXPONENT`].
    pub exponent: i64,
    pub position: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeasureGroup {
    pub grpid: i64,
    pub attrib: Option<i64>,
    pub date: i64,
    pub created: Option<i64>,
    pub modified: Option<i64>,
    pub category: Option<i64>,
    pub deviceid: Option<String>,
    /// Informational: a string, or the JSON text of whatever was sent.
    pub model: Option<String>,
    pub measures: Vec<Measure>,
}

impl MeasureGroup {
    /// When the group last changed; groups without `modified` count as
    /// changed when taken.
    pub fn modified(&self) -> i64 {
        self.modified.unwrap_or(self.date)
    }
}

/// A group of a page that could not be read.
#[derive(Clone, Debug)]
pub struct Rejected {
    /// Its grpid, if that much could be read.
    pub grpid: Option<i64>,
    /// When it last changed, read as [`MeasureGroup::modified`] does, if it
    /// could be read: the cursor still moves past it.
    pub modified: Option<i64>,
    /// The field that is wrong and how, e.g. `measures[1].value: invalid
    /// value: string "abc", expected an integer or a string of digits`.
    pub reason: String,
    /// The group's JSON exactly as Withings sent it.
    pub raw: Box<RawValue>,
}

/// One entry of a page: a group, or a group that could not be read.
pub type Entry = std::result::Result<MeasureGroup, Rejected>;

#[derive(Debug)]
pub struct Page {
    /// In the order of the answer.
    pub measuregrps: Vec<Entry>,
    pub more: bool,
    pub offset: Option<i64>,
}

/// The page around the groups; the groups stay text until read one by one.
#[derive(Deserialize)]
struct RawPage<'a> {
    #[serde(default, borrow)]
    measuregrps: Vec<&'a RawValue>,
    #[serde(default, deserialize_with = "lenient::flag")]
    more: bool,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    offset: Option<i64>,
}

/// Reads a getmeas `body` (its JSON text). Fails only when the page itself
/// is not the documented shape; a group that is not comes back rejected.
pub fn parse_page(body: &str) -> Result<Page> {
    let page: RawPage = serde_json::from_str(body).map_err(|e| {
        Error::withings(
            GETMEAS,
            WithingsKind::Malformed(format!("the page is not the documented shape ({e})")),
        )
    })?;
    Ok(Page {
        measuregrps: page.measuregrps.into_iter().map(parse_group).collect(),
        more: page.more,
        offset: page.offset,
    })
}

/// Reads one group from its JSON text.
pub fn parse_group(raw: &RawValue) -> Entry {
    let reject = |obj: Option<&Map<String, Value>>, reason: String| Rejected {
        grpid: obj.and_then(|o| o.get("grpid")).and_then(int_of),
        modified: obj.and_then(modified_of),
        reason,
        raw: raw.to_owned(),
    };
    // RawValue only checked that the text is JSON; a Value also enforces
    // serde_json's nesting limit, which a hostile group may exceed.
    let value: Value = match serde_json::from_str(raw.get()) {
        Ok(v) => v,
        Err(e) => return Err(reject(None, format!("the group cannot be read ({e})"))),
    };
    let Some(obj) = value.as_object() else {
        return Err(reject(None, "the group is not a JSON object".into()));
    };
    read_group(obj).map_err(|reason| reject(Some(obj), reason))
}

fn int_of(v: &Value) -> Option<i64> {
    lenient::int(v).ok()
}

/// `modified`, or `date` when `modified` is absent, as
/// [`MeasureGroup::modified`]; None when the one that counts is unreadable.
fn modified_of(obj: &Map<String, Value>) -> Option<i64> {
    match obj.get("modified") {
        None | Some(Value::Null) => obj.get("date").and_then(int_of),
        Some(v) => int_of(v),
    }
}

/// A field that must be there, read with `read`; errors name the field.
fn required<'a, T>(
    obj: &'a Map<String, Value>,
    path: &dyn Fn() -> String,
    key: &str,
    read: impl FnOnce(&'a Value) -> std::result::Result<T, serde_json::Error>,
) -> std::result::Result<T, String> {
    match obj.get(key) {
        Some(v) => read(v).map_err(|e| format!("{}{key}: {e}", path())),
        None => Err(format!("{}{key}: missing", path())),
    }
}

/// A field that may be absent or null.
fn optional<'a, T>(
    obj: &'a Map<String, Value>,
    path: &dyn Fn() -> String,
    key: &str,
    read: impl FnOnce(&'a Value) -> std::result::Result<Option<T>, serde_json::Error>,
) -> std::result::Result<Option<T>, String> {
    match obj.get(key) {
        Some(v) => read(v).map_err(|e| format!("{}{key}: {e}", path())),
        None => Ok(None),
    }
}

fn read_group(obj: &Map<String, Value>) -> std::result::Result<MeasureGroup, String> {
    let top = || String::new();
    let measures = match obj.get("measures") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, m)| read_measure(i, m))
            .collect::<std::result::Result<_, _>>()?,
        Some(_) => return Err("measures: not a list".into()),
    };
    Ok(MeasureGroup {
        grpid: required(obj, &top, "grpid", lenient::int)?,
        attrib: optional(obj, &top, "attrib", lenient::opt_int)?,
        date: required(obj, &top, "date", lenient::int)?,
        created: optional(obj, &top, "created", lenient::opt_int)?,
        modified: optional(obj, &top, "modified", lenient::opt_int)?,
        category: optional(obj, &top, "category", lenient::opt_int)?,
        deviceid: optional(obj, &top, "deviceid", Option::<String>::deserialize)?,
        model: optional(obj, &top, "model", lenient::label)?,
        measures,
    })
}

fn read_measure(i: usize, m: &Value) -> std::result::Result<Measure, String> {
    let path = || format!("measures[{i}].");
    let Some(obj) = m.as_object() else {
        return Err(format!("measures[{i}]: not a JSON object"));
    };
    // Named `unit` on the wire, and in the reason, which names the field.
    let exponent = required(obj, &path, "unit", lenient::int)?;
    if !(-MAX_EXPONENT..=MAX_EXPONENT).contains(&exponent) {
        return Err(format!(
            "measures[{i}].unit: {exponent} is outside -{MAX_EXPONENT}..={MAX_EXPONENT}, no measurement has 10^{exponent}"
        ));
    }
    Ok(Measure {
        value: required(obj, &path, "value", lenient::int)?,
        type_: required(obj, &path, "type", lenient::int)?,
        exponent,
        position: optional(obj, &path, "position", lenient::opt_int)?,
    })
}

/// The call's name in errors and logs.
pub const GETMEAS: &str = "measure getmeas";

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
    let text = api.post_text(GETMEAS, "/measure", Some(token), &form)?;
    parse_page(api::envelope_body(GETMEAS, &text)?)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn groups(page: &Page) -> Vec<&MeasureGroup> {
        page.measuregrps
            .iter()
            .map(|e| e.as_ref().unwrap_or_else(|r| panic!("rejected: {r:?}")))
            .collect()
    }

    fn rejects(page: &Page) -> Vec<&Rejected> {
        page.measuregrps
            .iter()
            .filter_map(|e| e.as_ref().err())
            .collect()
    }

    #[test]
    fn reads_a_real_shaped_page_with_extra_keys_and_nulls() {
        let body = r#"{
            "updatetime": 1700000000, "timezone": "Europe/Berlin",
            "measuregrps": [{
                "grpid": 2726375354, "attrib": 0, "date": 1700000000, "created": 1700000010,
                "modified": 1700000020, "category": 1, "deviceid": null, "hash_deviceid": null,
                "model": null, "modelid": 5, "comment": null, "apppfmid": 7,
                "measures": [{"value": 65750, "type": 1, "unit": -3, "algo": 0, "fm": 3}]
            }],
            "more": 1, "offset": 1
        }"#;
        let page = parse_page(body).unwrap();
        assert!(page.more);
        assert_eq!(page.offset, Some(1));
        let g = groups(&page)[0];
        assert_eq!(g.grpid, 2_726_375_354);
        assert_eq!(g.deviceid, None);
        assert_eq!(g.modified(), 1_700_000_020);
        assert_eq!(
            g.measures[0],
            Measure {
                value: 65750,
                type_: 1,
                exponent: -3,
                position: None
            }
        );
    }

    #[test]
    fn an_empty_body_is_an_empty_last_page() {
        let page = parse_page("{}").unwrap();
        assert!(page.measuregrps.is_empty());
        assert!(!page.more);
    }

    #[test]
    fn a_page_of_the_wrong_shape_is_malformed_not_unreachable() {
        for body in [
            r#"{"measuregrps": 5}"#,
            r#"{"measuregrps": [], "more": {}}"#,
            "null",
            r#"{"measuregrps": [], "offset": "next"}"#,
        ] {
            match parse_page(body) {
                Err(
                    e @ Error::Withings {
                        kind: WithingsKind::Malformed(_),
                        ..
                    },
                ) => {
                    assert!(!e.to_string().contains("unreachable"), "{e}")
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_group_without_grpid_is_rejected_alone() {
        let body = r#"{"measuregrps": [{"date": 1}, {"grpid": 2, "date": 3}]}"#;
        let page = parse_page(body).unwrap();
        let r = rejects(&page);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].reason, "grpid: missing");
        assert_eq!(r[0].grpid, None);
        assert_eq!(r[0].modified, Some(1), "date stands in for modified");
        assert_eq!(r[0].raw.get(), r#"{"date": 1}"#);
        assert!(page.measuregrps[1].is_ok());
    }

    #[test]
    fn a_bad_measure_value_rejects_its_group_naming_grpid_and_field() {
        let body = r#"{"measuregrps": [
            {"grpid": 7, "date": 10, "modified": 20, "measures": [
                {"value": 1, "type": 1, "unit": 0},
                {"value": "abc", "type": 6, "unit": -2}]},
            {"grpid": 8, "date": 10, "modified": 21, "measures": [{"value": 5, "type": 1, "unit": 0}]}
        ]}"#;
        let page = parse_page(body).unwrap();
        let r = &rejects(&page)[0];
        assert_eq!((r.grpid, r.modified), (Some(7), Some(20)));
        assert!(r.reason.starts_with("measures[1].value: "), "{}", r.reason);
        assert!(r.reason.contains("abc"), "{}", r.reason);
        assert!(r.raw.get().starts_with(r#"{"grpid": 7, "date": 10"#));
        assert_eq!(page.measuregrps[1].as_ref().unwrap().grpid, 8);
    }

    #[test]
    fn a_unit_of_2_to_the_32_rejects_its_group() {
        // 5 × 10^-(2^32+3): printed as 0.005 on 32-bit before Decimal was
        // fixed; no real measurement has such a unit.
        let unit = -((1i64 << 32) + 3);
        let body = format!(
            r#"{{"measuregrps": [{{"grpid": 9, "date": 1, "modified": 2,
                "measures": [{{"value": 5, "type": 1, "unit": {unit}}}]}}]}}"#
        );
        let page = parse_page(&body).unwrap();
        let r = &rejects(&page)[0];
        assert_eq!(r.grpid, Some(9));
        assert!(
            r.reason
                .starts_with("measures[0].unit: -4294967299 is outside"),
            "{}",
            r.reason
        );
        let edge = body.replace(&unit.to_string(), &(-MAX_EXPONENT).to_string());
        assert_eq!(
            groups(&parse_page(&edge).unwrap())[0].measures[0].exponent,
            -30
        );
        let over = body.replace(&unit.to_string(), &(MAX_EXPONENT + 1).to_string());
        assert_eq!(rejects(&parse_page(&over).unwrap()).len(), 1);
    }

    #[test]
    fn rejections_read_what_they_can_and_nothing_more() {
        let page = parse_page(
            r#"{"measuregrps": [
                5,
                {"grpid": "x1", "date": 1, "modified": "soon"},
                {"grpid": 3, "modified": null, "date": 40, "measures": {}},
                {"grpid": 4, "date": 1, "modified": 2, "measures": [7]},
                {"grpid": 5, "date": 1, "modified": 2, "deviceid": 12}
            ]}"#,
        )
        .unwrap();
        let r = rejects(&page);
        let seen: Vec<(Option<i64>, Option<i64>, &str)> = r
            .iter()
            .map(|r| (r.grpid, r.modified, r.reason.split(':').next().unwrap()))
            .collect();
        assert_eq!(
            seen,
            [
                (None, None, "the group is not a JSON object"),
                (None, None, "grpid"),
                (Some(3), Some(40), "measures"),
                (Some(4), Some(2), "measures[0]"),
                (Some(5), Some(2), "deviceid"),
            ]
        );
    }

    #[test]
    fn a_model_sent_as_an_integer_is_kept_as_text() {
        let body = include_str!(
            "../../tests/fixtures/withings-realdata/shapes/issue145_model_as_integer.json"
        );
        let text = api::envelope_body("test", body).unwrap();
        let page = parse_page(text).unwrap();
        let g = groups(&page)[0];
        assert_eq!(g.model.as_deref(), Some("10"));
        assert_eq!(g.measures.len(), 3);
        assert_eq!(g.measures[0].position, Some(12));
    }

    /// Real getmeas answers other projects captured (tests/fixtures/SOURCES.md),
    /// compiled in so the cross-built test binary carries them.
    pub(crate) mod real_data {
        use super::*;
        use crate::record::decimal::Decimal;

        macro_rules! fixture {
            ($path:literal) => {
                (
                    $path,
                    include_str!(concat!("../../tests/fixtures/withings-realdata/", $path)),
                )
            };
        }

        pub(crate) const FIXTURES: &[(&str, &str)] = &[
            fixture!("aiowithings/measurement.json"),
            fixture!("aiowithings/measurement_list_2.json"),
            fixture!("aiowithings/measurement_positions.json"),
            fixture!("carre/getmeas_1401864300.json"),
            fixture!("carre/getmeas_1401864426.json"),
            fixture!("cjoshmartin/sample_weight_data.fake_response.json"),
            fixture!("shapes/issue145_model_as_integer.json"),
            fixture!("shapes/mixed_3_real_groups_plus_issue145.json"),
            fixture!("webmonarch/measure_getmeas.json"),
            fixture!("withoutings/withings-resp-measure-getmeas-0-weight.json"),
        ];

        /// A fixture as a getmeas body: whole answers are unwrapped, bare
        /// group lists wrapped in a last page.
        pub(crate) fn body(text: &str) -> String {
            if text.trim_start().starts_with('[') {
                format!(r#"{{"measuregrps": {text}, "more": 0, "offset": 0}}"#)
            } else {
                api::envelope_body("fixture", text).unwrap().to_string()
            }
        }

        fn page_of(path: &str) -> Page {
            let (_, text) = FIXTURES.iter().find(|(p, _)| *p == path).unwrap();
            parse_page(&body(text)).unwrap()
        }

        fn group(page: &Page, grpid: i64) -> &MeasureGroup {
            groups(page).into_iter().find(|g| g.grpid == grpid).unwrap()
        }

        /// (type, exact value as printed) of each measure.
        fn values(g: &MeasureGroup) -> Vec<(i64, String)> {
            g.measures
                .iter()
                .map(|m| (m.type_, Decimal::new(m.value, m.exponent).to_string()))
                .collect()
        }

        #[test]
        fn every_group_of_every_capture_is_read() {
            for (path, text) in FIXTURES {
                let page = parse_page(&body(text)).unwrap_or_else(|e| panic!("{path}: {e}"));
                let listed: serde_json::Value = serde_json::from_str(&body(text)).unwrap();
                let listed = listed["measuregrps"].as_array().unwrap().len();
                assert!(listed > 0, "{path}");
                assert_eq!(page.measuregrps.len(), listed, "{path}");
                for entry in &page.measuregrps {
                    if let Err(r) = entry {
                        panic!("{path}: group {:?} rejected: {}", r.grpid, r.reason);
                    }
                }
            }
        }

        #[test]
        fn body_scan_values_are_those_aiowithings_asserts_but_exact() {
            // expected/aiowithings_test_models.ambr: 59.050000000000004 and
            // 95.81700000000001 as floats; the relay keeps them exact.
            let page = page_of("aiowithings/measurement_list_2.json");
            assert_eq!(page.measuregrps.len(), 34);
            let hr = group(&page, 5_109_691_092);
            assert_eq!(values(hr), [(11, "120".into())]);
            assert_eq!((hr.date, hr.modified()), (1_703_523_863, 1_703_530_448));
            assert_eq!(hr.model.as_deref(), Some("Body Scan"));
            assert_eq!(
                values(group(&page, 5_109_691_089)),
                [
                    (196, "54.897".into()),
                    (197, "50.404".into()),
                    (198, "59.05".into())
                ]
            );
            assert_eq!(values(group(&page, 5_109_691_080)), [(1, "95.817".into())]);
            assert_eq!(values(group(&page, 5_112_626_817)), [(1, "95.854".into())]);
        }

        #[test]
        fn segmental_measures_keep_their_position() {
            let page = page_of("aiowithings/measurement_positions.json");
            // expected/aiowithings_test_helpers.ambr: the latest weight is 96.44.
            let latest = group(&page, 5_156_052_100);
            assert_eq!(values(latest)[0], (1, "96.44".into()));
            assert!(latest
                .measures
                .iter()
                .any(|m| m.type_ == 173 && m.position == Some(12)));
        }

        #[test]
        fn the_old_documentation_sample_reads_as_its_spec_says() {
            // webmonarch/withings-api test/spec/measure_getmeas_results_spec.rb.
            let page = page_of("webmonarch/measure_getmeas.json");
            let g = groups(&page)[0];
            assert_eq!(g.grpid, 2909);
            assert_eq!((g.attrib, g.category), (Some(0), Some(1)));
            assert_eq!(g.date, 1_222_930_968);
            assert_eq!(g.measures.len(), 4);
            assert_eq!(values(g)[0], (1, "79.3".into()));
            assert_eq!(g.modified(), g.date, "no modified in 2008: date stands in");
        }

        #[test]
        fn answers_from_2014_with_attrib_minus_one_and_no_modified_are_read() {
            let page = page_of("carre/getmeas_1401864426.json");
            let g = group(&page, 216_964_980);
            assert_eq!(g.attrib, Some(2));
            assert_eq!(g.modified, None);
            assert_eq!(values(g), [(1, "64.3".into()), (18, "-1".into())]);
            let page = page_of("carre/getmeas_1401864300.json");
            let g = group(&page, 215_026_954);
            assert_eq!(g.attrib, Some(-1));
            assert_eq!(
                values(g),
                [(9, "83".into()), (10, "126".into()), (11, "86".into())]
            );
        }

        #[test]
        fn the_mixed_page_reads_all_four_groups() {
            let page = page_of("shapes/mixed_3_real_groups_plus_issue145.json");
            let ids: Vec<i64> = groups(&page).iter().map(|g| g.grpid).collect();
            assert_eq!(ids, [5_109_691_092, 5_109_691_089, 5_109_691_080, 1]);
            assert_eq!(group(&page, 1).model.as_deref(), Some("10"));
        }

        #[test]
        fn weigh_ins_from_body_plus_answers_are_exact() {
            let page = page_of("withoutings/withings-resp-measure-getmeas-0-weight.json");
            assert_eq!(values(groups(&page)[0]), [(1, "80.094".into())]);
            let page = page_of("aiowithings/measurement.json");
            let attribs: Vec<Option<i64>> = groups(&page).iter().map(|g| g.attrib).collect();
            assert_eq!(attribs, [Some(0), Some(8)], "the same grpid twice (§2)");
            assert_eq!(values(groups(&page)[1]), [(1, "118.003".into())]);
        }
    }
}

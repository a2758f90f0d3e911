//! Real getmeas answers other projects captured (tests/fixtures/SOURCES.md)
//! through the whole record mapping: every type is known, every key, unit
//! and value is the one this relay settles on, and the values agree with
//! what aiowithings asserts for the same groups. Compiled in, so the
//! cross-built test binary carries them.

use super::{meastype, Record, RecordView};
use crate::withings::measure::tests::real_data::{body, FIXTURES};
use crate::withings::measure::{parse_page, MeasureGroup};

/// Every readable group of a capture (whole answers and bare lists).
fn groups(path: &str) -> Vec<MeasureGroup> {
    let (_, text) = FIXTURES.iter().find(|(p, _)| *p == path).unwrap();
    let page = parse_page(&body(text)).unwrap();
    page.measuregrps.into_iter().map(Result::unwrap).collect()
}

/// The group as the outputs read it back: (key, value, unit) per key.
fn keyed(group: &MeasureGroup) -> Vec<(String, String, Option<String>)> {
    let line = Record::from_group("1", group).to_json_line();
    let view = RecordView::parse(&line).unwrap();
    view.keyed()
        .into_iter()
        .map(|(k, m)| (k, m.number().to_string(), m.unit.clone()))
        .collect()
}

fn group(path: &str, grpid: i64) -> MeasureGroup {
    groups(path).into_iter().find(|g| g.grpid == grpid).unwrap()
}

#[test]
fn every_measure_type_in_the_captures_is_known_but_one_obsolete_code() {
    let mut unknown = Vec::new();
    // The shapes are not captures: their numbers are made up.
    for (path, _) in FIXTURES.iter().filter(|(p, _)| !p.starts_with("shapes/")) {
        for g in groups(path) {
            for m in &g.measures {
                if meastype::lookup(m.type_).is_none() && !unknown.contains(&m.type_) {
                    unknown.push(m.type_);
                }
            }
        }
    }
    // Type 18 (value -1000) comes only in the 2014 OAuth 1 era captures.
    assert_eq!(unknown, [18]);
}

#[test]
fn a_body_scan_group_reads_as_aiowithings_says_under_the_settled_keys() {
    // aiowithings' test_aggregate_positional_measurements: the newer of
    // the two groups of measurement_positions.json.
    let g = group("aiowithings/measurement_positions.json", 5_156_052_100);
    let kg = Some("kg".to_string());
    let expected: Vec<(&str, &str, Option<String>)> = vec![
        ("weight", "96.44", kg.clone()),
        ("fat_free_mass", "78.63", kg.clone()),
        ("fat_mass", "17.8", kg.clone()),
        ("muscle_mass", "74.75", kg.clone()),
        ("hydration", "52.96", kg.clone()),
        ("bone_mass", "3.87", kg.clone()),
        ("extracellular_water", "21.75", kg.clone()),
        ("intracellular_water", "31.2", kg.clone()),
        ("visceral_fat", "3.1", None),
        ("fat_free_mass_torso", "40.49", kg.clone()),
        ("fat_free_mass_left_leg", "13.84", kg.clone()),
        ("fat_free_mass_left_arm", "5.05", kg.clone()),
        ("fat_free_mass_right_leg", "14.05", kg.clone()),
        ("fat_free_mass_right_arm", "5.18", kg.clone()),
        ("fat_mass_torso", "10.99", kg.clone()),
        ("fat_mass_left_leg", "2.45", kg.clone()),
        ("fat_mass_left_arm", "1.03", kg.clone()),
        ("fat_mass_right_leg", "2.33", kg.clone()),
        ("fat_mass_right_arm", "0.99", kg.clone()),
        ("muscle_mass_torso", "38.7", kg.clone()),
        ("muscle_mass_left_leg", "13.09", kg.clone()),
        ("muscle_mass_left_arm", "4.77", kg.clone()),
        ("muscle_mass_right_leg", "13.29", kg.clone()),
        ("muscle_mass_right_arm", "4.89", kg.clone()),
        ("basal_metabolic_rate", "2308", Some("kcal".to_string())),
        ("fat_ratio", "18.457", Some("%".to_string())),
    ];
    let expected: Vec<(String, String, Option<String>)> = expected
        .into_iter()
        .map(|(k, v, u)| (k.to_string(), v.to_string(), u))
        .collect();
    assert_eq!(keyed(&g), expected);
}

#[test]
fn extracellular_water_at_position_6_is_the_whole_body_value() {
    let g = group("aiowithings/measurement_list_2.json", 5_114_418_400);
    let keys = keyed(&g);
    let find = |key: &str| {
        keys.iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, v, _)| v.as_str())
    };
    assert_eq!(find("extracellular_water"), Some("21.39"));
    assert_eq!(find("intracellular_water"), Some("30.78"));
    assert_eq!(find("hydration"), Some("52.17"), "21.39 + 30.78");
    assert!(keys
        .iter()
        .all(|(k, _, _)| !k.contains("_p") && !k.contains("between")));
}

#[test]
fn electrodermal_activity_has_the_settled_names_and_unit() {
    // aiowithings' test_models snapshot: 54.897, 50.404 and 59.05.
    let g = group("aiowithings/measurement_list_2.json", 5_109_691_089);
    let pct = Some("%".to_string());
    assert_eq!(
        keyed(&g),
        [
            (
                "electrodermal_activity_feet".to_string(),
                "54.897".to_string(),
                pct.clone()
            ),
            (
                "electrodermal_activity_left_foot".to_string(),
                "50.404".to_string(),
                pct.clone()
            ),
            (
                "electrodermal_activity_right_foot".to_string(),
                "59.05".to_string(),
                pct
            ),
        ]
    );
}

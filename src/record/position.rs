//! Where on the body a measure was taken (facts sheet §2.2, position
//! table), and the key and name that gives it: `muscle_mass_left_arm`,
//! "Muscle mass left arm". A whole-body position adds nothing, so a Body
//! Scan's fat mass lands on the same sensor, key and variable as a
//! Body+'s.

use super::meastype;
use std::borrow::Cow;

/// Positions that stand for the whole body, treated as no position:
/// - 7: not in Withings' reference; aiowithings names it "whole body", and
///   Body Scans send it on every whole-body measure (fat mass, hydration…).
/// - 6: documented as "between the legs", the foot-to-foot current path
///   of a scale. One real Body Scan group sends its extracellular water
///   with 6 where every other group has 7, and 21.39 kg of it plus the
///   same group's 30.78 kg intracellular water (position 7) make its
///   52.17 kg hydration: it is the whole-body value.
pub fn is_whole_body(position: i64) -> bool {
    matches!(position, 6 | 7)
}

/// Body parts by code, as a key part (`_` becomes a space in names).
const PARTS: &[(i64, &str)] = &[
    (0, "right_wrist"),
    (1, "left_wrist"),
    (2, "right_arm"),
    (3, "left_arm"),
    (4, "right_foot"),
    (5, "left_foot"),
    (8, "left_side"),
    (9, "right_side"),
    (10, "left_leg"),
    (11, "right_leg"),
    (12, "torso"),
    (13, "left_hand"),
    (14, "right_hand"),
];

/// The position that sets a measure apart from the whole-body one.
fn distinct(position: Option<i64>) -> Option<i64> {
    position.filter(|p| !is_whole_body(*p))
}

/// `left_arm`; `position_28` for a code without a short name (the
/// stethoscope's areas, codes yet to come).
fn part(position: i64) -> Cow<'static, str> {
    match PARTS.iter().find(|(p, _)| *p == position) {
        Some((_, part)) => Cow::Borrowed(part),
        None => Cow::Owned(format!("position_{position}")),
    }
}

/// A segmental type's name without `_segment`: the body part says it.
fn base(code: i64, name: &str) -> &str {
    if meastype::is_segmental(code) {
        name.strip_suffix("_segment").unwrap_or(name)
    } else {
        name
    }
}

/// The measure's key, unique within a group: `weight`,
/// `muscle_mass_left_arm`, `fat_mass` for a whole-body position.
pub fn key(code: i64, name: &str, position: Option<i64>) -> String {
    match distinct(position) {
        Some(p) => format!("{}_{}", base(code, name), part(p)),
        None => name.to_string(),
    }
}

/// `fat_ratio` → `Fat ratio`, for names the type table does not know.
pub fn words(name: &str) -> String {
    let mut words = name.replace('_', " ");
    // Keys are ASCII (type names, `type_<code>`); anything else keeps its
    // first letter as it is.
    if let Some(first) = words.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    words
}

/// What a person reads: "Weight", "Muscle mass left arm", "Type 999".
pub fn label(code: i64, name: &str, position: Option<i64>) -> String {
    let whole = match meastype::lookup(code) {
        Some(t) => Cow::Borrowed(t.label),
        None => Cow::Owned(words(name)),
    };
    match distinct(position) {
        Some(p) => {
            let whole = if meastype::is_segmental(code) {
                whole.strip_suffix(" segment").unwrap_or(&whole)
            } else {
                &whole
            };
            format!("{whole} {}", part(p).replace('_', " "))
        }
        None => whole.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_body_positions_add_nothing() {
        assert_eq!(key(8, "fat_mass", Some(7)), "fat_mass");
        assert_eq!(key(8, "fat_mass", None), "fat_mass");
        assert_eq!(
            key(168, "extracellular_water", Some(6)),
            "extracellular_water"
        );
        assert_eq!(label(8, "fat_mass", Some(7)), "Fat mass");
    }

    #[test]
    fn segments_read_as_body_parts() {
        assert_eq!(
            key(175, "muscle_mass_segment", Some(3)),
            "muscle_mass_left_arm"
        );
        assert_eq!(
            label(175, "muscle_mass_segment", Some(3)),
            "Muscle mass left arm"
        );
        assert_eq!(
            key(173, "fat_free_mass_segment", Some(12)),
            "fat_free_mass_torso"
        );
        assert_eq!(
            label(174, "fat_mass_segment", Some(11)),
            "Fat mass right leg"
        );
        assert_eq!(
            key(175, "muscle_mass_segment", None),
            "muscle_mass_segment",
            "without a part it must not take the whole-body sensor"
        );
    }

    #[test]
    fn other_positions_and_unknown_codes_keep_a_stable_key() {
        assert_eq!(key(11, "heart_rate", Some(1)), "heart_rate_left_wrist");
        assert_eq!(key(999, "type_999", Some(12)), "type_999_torso");
        assert_eq!(
            key(175, "muscle_mass_segment", Some(28)),
            "muscle_mass_position_28"
        );
        assert_eq!(label(999, "type_999", Some(40)), "Type 999 position 40");
        assert_eq!(label(999, "type_999", None), "Type 999");
    }

    #[test]
    fn every_body_part_of_the_table_has_a_distinct_key() {
        let mut keys: Vec<String> = (0..=31)
            .filter(|p| !is_whole_body(*p))
            .map(|p| key(175, "muscle_mass_segment", Some(p)))
            .collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 30);
        assert!(!keys.contains(&"muscle_mass".to_string()));
    }
}

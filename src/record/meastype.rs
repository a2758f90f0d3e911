//! Withings measure type codes (facts sheet §2.2) to what every output
//! needs: a stable name, the name a person reads, a unit, and how Home
//! Assistant shows the sensor. One table, so a type's decisions sit
//! together. New codes keep appearing, so an unknown code still gets a
//! stable name.
//!
//! Names and units follow Withings' reference where Home Assistant's own
//! Withings integration (`homeassistant/components/withings/sensor.py`) and
//! aiowithings agree with it. Where they disagree, the choice and why:
//! - Electrodermal activity (196–198): Withings states no unit; HA shows
//!   `%`. We follow HA: the values are a 0–100 score (54.897 in a real
//!   Body Scan capture), and with a unit HA graphs them like HA's own
//!   integration does, so a user moving over sees the same thing.
//! - Vascular age (155): C6 (facts sheet) says years, HA leaves it
//!   unitless. We keep `years`: an age reads as years to a person, and it
//!   matches metabolic age (227). It has no HA device class, so HA takes
//!   the unit as text.
//! - Blood pressure: HA's integration writes `mmhg`; we keep Withings'
//!   `mmHg`, the unit's own spelling (and HA's `UnitOfPressure.MMHG`).
//! - Keys stay as they were (`heart_rate`, `vo2max`, `visceral_fat`):
//!   they are topics, hook variables and JSON names users rely on. Only
//!   the display names change, to the spelling people know ("SpO2",
//!   "VO2 max", "QRS interval", "AFib result").

use std::borrow::Cow;

/// How one measure type reads and shows.
#[derive(Debug, PartialEq, Eq)]
pub struct MeasType {
    pub code: i64,
    /// Stable: JSON `name`, MQTT topics, hook variables.
    pub name: &'static str,
    /// What a person reads: the Home Assistant sensor's name.
    pub label: &'static str,
    /// As documented; `None` where the value is a class code or a score
    /// Withings gives no unit.
    pub unit: Option<&'static str>,
    /// The HA sensor device class, only where HA has one whose units fit.
    pub device_class: Option<&'static str>,
    /// An `mdi:` icon; every type without a device class has one (HA draws
    /// a device class's own icon).
    pub icon: Option<&'static str>,
    /// HA's `suggested_display_precision`: decimals worth showing.
    pub precision: Option<u8>,
    /// A number one can average and graph: HA's `state_class: measurement`
    /// and long-term statistics. False for class codes (AFib results).
    pub quantity: bool,
}

const KG: Option<&str> = Some("kg");
const WEIGHT: Option<&str> = Some("weight");
const TEMP: Option<&str> = Some("temperature");
const DURATION: Option<&str> = Some("duration");

/// A quantity: numbers HA keeps statistics of.
const fn q(
    code: i64,
    name: &'static str,
    label: &'static str,
    unit: Option<&'static str>,
    device_class: Option<&'static str>,
    icon: Option<&'static str>,
    precision: u8,
) -> MeasType {
    MeasType {
        code,
        name,
        label,
        unit,
        device_class,
        icon,
        precision: Some(precision),
        quantity: true,
    }
}

/// A class code (facts sheet §2.2, type 130's table): a number that names
/// a result, not an amount.
const fn class_code(code: i64, name: &'static str, label: &'static str) -> MeasType {
    MeasType {
        code,
        name,
        label,
        unit: None,
        device_class: None,
        icon: Some("mdi:heart-flash"),
        precision: None,
        quantity: false,
    }
}

/// Precision: 2 for masses and ratios (HA's integration shows masses with
/// 2), 0 for bpm, mmHg, ms, ages and scores, 1 for temperatures and
/// speeds. Height gets 2: a height in metres shown with 1 decimal (HA's
/// choice) turns 1.78 m into 1.8 m.
#[rustfmt::skip]
const TYPES: &[MeasType] = &[
    q(1, "weight", "Weight", KG, WEIGHT, None, 2),
    q(4, "height", "Height", Some("m"), Some("distance"), None, 2),
    q(5, "fat_free_mass", "Fat free mass", KG, WEIGHT, None, 2),
    q(6, "fat_ratio", "Fat ratio", Some("%"), None, Some("mdi:percent"), 2),
    q(8, "fat_mass", "Fat mass", KG, WEIGHT, None, 2),
    q(9, "diastolic_blood_pressure", "Diastolic blood pressure", Some("mmHg"), None, Some("mdi:heart"), 0),
    q(10, "systolic_blood_pressure", "Systolic blood pressure", Some("mmHg"), None, Some("mdi:heart"), 0),
    q(11, "heart_rate", "Heart rate", Some("bpm"), None, Some("mdi:heart-pulse"), 0),
    q(12, "temperature", "Temperature", Some("°C"), TEMP, None, 1),
    q(54, "spo2", "SpO2", Some("%"), None, Some("mdi:lungs"), 0),
    q(71, "body_temperature", "Body temperature", Some("°C"), TEMP, None, 1),
    q(73, "skin_temperature", "Skin temperature", Some("°C"), TEMP, None, 1),
    q(76, "muscle_mass", "Muscle mass", KG, WEIGHT, Some("mdi:arm-flex"), 2),
    q(77, "hydration", "Hydration", KG, WEIGHT, Some("mdi:water"), 2),
    q(88, "bone_mass", "Bone mass", KG, WEIGHT, Some("mdi:bone"), 2),
    q(91, "pulse_wave_velocity", "Pulse wave velocity", Some("m/s"), Some("speed"), None, 1),
    q(123, "vo2max", "VO2 max", Some("ml/min/kg"), None, Some("mdi:run"), 1),
    class_code(130, "afib_result", "AFib result"),
    // ECG intervals: ms according to C6 (facts sheet §2.2), which HA's
    // duration class takes.
    q(135, "qrs_interval", "QRS interval", Some("ms"), DURATION, None, 0),
    q(136, "pr_interval", "PR interval", Some("ms"), DURATION, None, 0),
    q(137, "qt_interval", "QT interval", Some("ms"), DURATION, None, 0),
    q(138, "corrected_qt_interval", "Corrected QT interval", Some("ms"), DURATION, None, 0),
    class_code(139, "afib_ppg_result", "AFib result (PPG)"),
    q(155, "vascular_age", "Vascular age", Some("years"), None, Some("mdi:cake-variant"), 0),
    q(158, "nerve_health_score_left_foot", "Nerve health score left foot", None, None, Some("mdi:foot-print"), 0),
    q(159, "nerve_health_score_right_foot", "Nerve health score right foot", None, None, Some("mdi:foot-print"), 0),
    q(167, "nerve_health_score_feet", "Nerve health score feet", None, None, Some("mdi:foot-print"), 0),
    q(168, "extracellular_water", "Extracellular water", KG, WEIGHT, Some("mdi:water"), 2),
    q(169, "intracellular_water", "Intracellular water", KG, WEIGHT, Some("mdi:water"), 2),
    // An index without a unit, yet a number worth a graph.
    q(170, "visceral_fat", "Visceral fat", None, None, Some("mdi:stomach"), 1),
    // Segmental (facts sheet §2.2, "carries position"): the body part
    // completes the name, see `record::position`.
    q(173, "fat_free_mass_segment", "Fat free mass segment", KG, WEIGHT, None, 2),
    q(174, "fat_mass_segment", "Fat mass segment", KG, WEIGHT, None, 2),
    q(175, "muscle_mass_segment", "Muscle mass segment", KG, WEIGHT, Some("mdi:arm-flex"), 2),
    q(196, "electrodermal_activity_feet", "Electrodermal activity feet", Some("%"), None, Some("mdi:foot-print"), 1),
    q(197, "electrodermal_activity_left_foot", "Electrodermal activity left foot", Some("%"), None, Some("mdi:foot-print"), 1),
    q(198, "electrodermal_activity_right_foot", "Electrodermal activity right foot", Some("%"), None, Some("mdi:foot-print"), 1),
    // kcal per day; not HA's energy class, which takes no `measurement`.
    q(226, "basal_metabolic_rate", "Basal metabolic rate", Some("kcal"), None, Some("mdi:fire"), 0),
    q(227, "metabolic_age", "Metabolic age", Some("years"), None, Some("mdi:cake-variant"), 0),
    q(229, "electrochemical_skin_conductance", "Electrochemical skin conductance", None, None, Some("mdi:foot-print"), 0),
];

/// The icon of a type the table does not know.
pub const UNKNOWN_ICON: &str = "mdi:scale-bathroom";

/// Everything known about a measure type, or None for a code this table
/// does not list.
pub fn lookup(code: i64) -> Option<&'static MeasType> {
    TYPES.iter().find(|t| t.code == code)
}

/// The type whose stable name this is: how a sensor remembered by its
/// name alone (before the relay kept its type code) finds its type.
pub fn by_name(name: &str) -> Option<&'static MeasType> {
    TYPES.iter().find(|t| t.name == name)
}

/// The stable name of a measure type: `weight`, `fat_ratio`, or `type_999`.
pub fn name(code: i64) -> Cow<'static, str> {
    match lookup(code) {
        Some(t) => Cow::Borrowed(t.name),
        None => Cow::Owned(format!("type_{code}")),
    }
}

/// The unit of a measure type, if it has one.
pub fn unit(code: i64) -> Option<&'static str> {
    lookup(code).and_then(|t| t.unit)
}

/// The types whose measures come once per body part.
pub fn is_segmental(code: i64) -> bool {
    matches!(code, 173..=175)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_have_names_and_units() {
        assert_eq!(name(1), "weight");
        assert_eq!(unit(1), Some("kg"));
        assert_eq!(name(6), "fat_ratio");
        assert_eq!(unit(6), Some("%"));
        assert_eq!(name(11), "heart_rate");
        assert_eq!(unit(11), Some("bpm"));
        assert_eq!(unit(130), None);
    }

    #[test]
    fn unknown_codes_get_a_stable_name_and_no_unit() {
        assert_eq!(name(999), "type_999");
        assert_eq!(name(-3), "type_-3");
        assert_eq!(unit(999), None);
        assert_eq!(lookup(999), None);
    }

    #[test]
    fn names_labels_and_codes_are_unique() {
        for (i, a) in TYPES.iter().enumerate() {
            for b in &TYPES[i + 1..] {
                assert_ne!(a.code, b.code);
                assert_ne!(a.name, b.name);
                assert_ne!(a.label, b.label);
            }
        }
    }

    #[test]
    fn display_names_are_spelled_as_people_know_them() {
        let label = |code| lookup(code).unwrap().label;
        assert_eq!(label(54), "SpO2");
        assert_eq!(label(123), "VO2 max");
        assert_eq!(label(135), "QRS interval");
        assert_eq!(label(130), "AFib result");
        assert_eq!(label(139), "AFib result (PPG)");
        assert_eq!(label(6), "Fat ratio");
    }

    #[test]
    fn where_the_sources_disagree_the_documented_choice_holds() {
        for code in [196, 197, 198] {
            assert_eq!(
                unit(code),
                Some("%"),
                "HA's unit for electrodermal activity"
            );
        }
        assert_eq!(unit(155), Some("years"));
        assert_eq!(unit(9), Some("mmHg"));
        assert_eq!(unit(10), Some("mmHg"));
    }

    #[test]
    fn every_sensor_without_a_device_class_has_an_icon() {
        for t in TYPES {
            if t.device_class.is_none() {
                let icon = t.icon.unwrap_or_else(|| panic!("{} has no icon", t.name));
                assert!(icon.starts_with("mdi:"), "{icon}");
            }
        }
        assert_eq!(lookup(11).unwrap().icon, Some("mdi:heart-pulse"));
        assert_eq!(lookup(77).unwrap().icon, Some("mdi:water"));
    }

    #[test]
    fn precision_per_kind_of_measure() {
        let precision = |code| lookup(code).unwrap().precision;
        for code in [1, 5, 8, 76, 77, 88, 168, 169, 173, 174, 175, 6] {
            assert_eq!(precision(code), Some(2), "masses and ratios: {code}");
        }
        for code in [9, 10, 11, 135, 155, 226] {
            assert_eq!(precision(code), Some(0), "bpm, mmHg, ms, ages: {code}");
        }
        for code in [12, 71, 73] {
            assert_eq!(precision(code), Some(1), "temperatures: {code}");
        }
        assert_eq!(precision(130), None, "a class code has no decimals");
    }

    #[test]
    fn every_number_is_a_measurement_but_class_codes_are_not() {
        for t in TYPES {
            assert_eq!(t.quantity, !matches!(t.code, 130 | 139), "{}", t.name);
        }
        assert!(lookup(170).unwrap().quantity, "visceral fat too");
    }

    #[test]
    fn device_classes_only_where_the_unit_fits_them() {
        for t in TYPES {
            let fits = match t.device_class {
                None => true,
                Some("weight") => t.unit == Some("kg"),
                Some("temperature") => t.unit == Some("°C"),
                Some("distance") => t.unit == Some("m"),
                Some("speed") => t.unit == Some("m/s"),
                Some("duration") => t.unit == Some("ms"),
                Some(_) => false,
            };
            assert!(fits, "{}: {:?} with {:?}", t.name, t.device_class, t.unit);
        }
    }
}

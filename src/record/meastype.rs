//! Withings measure type codes to stable names and units (facts sheet §2.2).
//! New codes keep appearing, so an unknown code still gets a stable name.

use std::borrow::Cow;

/// (code, name, unit). Units are as documented; `None` where the value is a
/// class code or Withings states no unit.
const TYPES: &[(i64, &str, Option<&str>)] = &[
    (1, "weight", Some("kg")),
    (4, "height", Some("m")),
    (5, "fat_free_mass", Some("kg")),
    (6, "fat_ratio", Some("%")),
    (8, "fat_mass", Some("kg")),
    (9, "diastolic_blood_pressure", Some("mmHg")),
    (10, "systolic_blood_pressure", Some("mmHg")),
    (11, "heart_rate", Some("bpm")),
    (12, "temperature", Some("°C")),
    (54, "spo2", Some("%")),
    (71, "body_temperature", Some("°C")),
    (73, "skin_temperature", Some("°C")),
    (76, "muscle_mass", Some("kg")),
    (77, "hydration", Some("kg")),
    (88, "bone_mass", Some("kg")),
    (91, "pulse_wave_velocity", Some("m/s")),
    (123, "vo2max", Some("ml/min/kg")),
    (130, "afib_result", None),
    (135, "qrs_interval", Some("ms")),
    (136, "pr_interval", Some("ms")),
    (137, "qt_interval", Some("ms")),
    (138, "corrected_qt_interval", Some("ms")),
    (139, "afib_ppg_result", None),
    (155, "vascular_age", Some("years")),
    (158, "nerve_health_score_left_foot", None),
    (159, "nerve_health_score_right_foot", None),
    (167, "nerve_health_score_feet", None),
    (168, "extracellular_water", Some("kg")),
    (169, "intracellular_water", Some("kg")),
    (170, "visceral_fat", None),
    (173, "fat_free_mass_segment", Some("kg")),
    (174, "fat_mass_segment", Some("kg")),
    (175, "muscle_mass_segment", Some("kg")),
    (196, "electrodermal_activity_feet", None),
    (197, "electrodermal_activity_left_foot", None),
    (198, "electrodermal_activity_right_foot", None),
    (226, "basal_metabolic_rate", Some("kcal")),
    (227, "metabolic_age", Some("years")),
    (229, "electrochemical_skin_conductance", None),
];

/// The stable name of a measure type: `weight`, `fat_ratio`, or `type_999`.
pub fn name(code: i64) -> Cow<'static, str> {
    match TYPES.iter().find(|t| t.0 == code) {
        Some(t) => Cow::Borrowed(t.1),
        None => Cow::Owned(format!("type_{code}")),
    }
}

/// The unit of a measure type, if Withings documents one.
pub fn unit(code: i64) -> Option<&'static str> {
    TYPES.iter().find(|t| t.0 == code).and_then(|t| t.2)
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
    }

    #[test]
    fn names_and_codes_are_unique() {
        for (i, a) in TYPES.iter().enumerate() {
            for b in &TYPES[i + 1..] {
                assert_ne!(a.0, b.0);
                assert_ne!(a.1, b.1);
            }
        }
    }
}

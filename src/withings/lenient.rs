//! Deserializers that accept the shapes Withings is known to vary between:
//! ids as JSON strings or integers, `more` as 0/1 or a boolean (facts sheet
//! §1.3, §2, §5), labels such as `model` as strings or numbers.

use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::fmt;

struct IntOrString;

impl Visitor<'_> for IntOrString {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer or a string of digits")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        if v.fract() == 0.0 && v.abs() < 9.0e15 {
            Ok(v as i64)
        } else {
            Err(E::invalid_value(Unexpected::Float(v), &self))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        v.trim()
            .parse()
            .map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
    }
}

/// An integer that may arrive as `123` or `"123"`.
pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(IntOrString)
}

/// Like [`int`], for fields that may also be `null` or absent.
pub fn opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct Opt;
    impl<'de> Visitor<'de> for Opt {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an integer, a string of digits, or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            int(d).map(Some)
        }
    }
    d.deserialize_option(Opt)
}

/// A user id as a string of digits, whether sent as a number or a string.
pub fn userid<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let id = int(d)?;
    if id < 0 {
        return Err(de::Error::custom("userid is negative"));
    }
    Ok(id.to_string())
}

/// A label that is informational only, such as a group's `model`: a string
/// as is, anything else as its JSON text, null as None. The facts sheet has
/// `model` as a string (§2), yet Withings was seen sending `"model": 10`
/// (joostlek/python-withings issue #145); refusing a weigh-in over its
/// device name would lose the weigh-in.
pub fn label<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    })
}

/// `more` is documented as an integer for getmeas and a boolean elsewhere.
pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct Flag;
    impl Visitor<'_> for Flag {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a boolean or 0/1")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
            Ok(v != 0)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
            Ok(v != 0)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            Ok(!matches!(v, "" | "0" | "false"))
        }
        fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }
    }
    d.deserialize_any(Flag)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Sample {
        #[serde(deserialize_with = "super::userid")]
        userid: String,
        #[serde(deserialize_with = "super::flag")]
        more: bool,
        #[serde(default, deserialize_with = "super::opt_int")]
        model_id: Option<i64>,
        #[serde(default, deserialize_with = "super::label")]
        model: Option<String>,
    }

    fn parse(json: &str) -> Result<Sample, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn userid_as_string_or_integer() {
        assert_eq!(
            parse(r#"{"userid":"12345678","more":0}"#).unwrap().userid,
            "12345678"
        );
        assert_eq!(parse(r#"{"userid":363,"more":0}"#).unwrap().userid, "363");
        assert!(parse(r#"{"userid":"12x","more":0}"#).is_err());
        assert!(parse(r#"{"userid":-4,"more":0}"#).is_err());
    }

    #[test]
    fn more_as_integer_or_boolean() {
        assert!(parse(r#"{"userid":1,"more":1}"#).unwrap().more);
        assert!(parse(r#"{"userid":1,"more":true}"#).unwrap().more);
        assert!(!parse(r#"{"userid":1,"more":false}"#).unwrap().more);
        assert!(!parse(r#"{"userid":1,"more":0}"#).unwrap().more);
    }

    #[test]
    fn optional_ints_accept_null_absent_and_strings() {
        assert_eq!(parse(r#"{"userid":1,"more":0}"#).unwrap().model_id, None);
        assert_eq!(
            parse(r#"{"userid":1,"more":0,"model_id":null}"#)
                .unwrap()
                .model_id,
            None
        );
        assert_eq!(
            parse(r#"{"userid":1,"more":0,"model_id":"5"}"#)
                .unwrap()
                .model_id,
            Some(5)
        );
    }

    #[test]
    fn labels_take_strings_numbers_and_null() {
        let model = |json: &str| parse(json).unwrap().model;
        assert_eq!(
            model(r#"{"userid":1,"more":0,"model":"Body Scan"}"#).as_deref(),
            Some("Body Scan")
        );
        assert_eq!(
            model(r#"{"userid":1,"more":0,"model":10}"#).as_deref(),
            Some("10")
        );
        assert_eq!(model(r#"{"userid":1,"more":0,"model":null}"#), None);
        assert_eq!(model(r#"{"userid":1,"more":0}"#), None);
        assert_eq!(
            model(r#"{"userid":1,"more":0,"model":{"id":10}}"#).as_deref(),
            Some(r#"{"id":10}"#)
        );
    }
}

//! The address a browser landed on after Withings' consent page, as a
//! person pastes it into `authorize --paste`: the redirect URL with
//! OAuth's `state` and either a `code` or an `error` (facts sheet §1.2).
//! Nothing may answer at that address (a LAN or localhost callback of a
//! restricted-mode app, §1.1): the browser shows an error page, but its
//! address bar holds all we need.

/// What the redirect brought back.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Landing {
    /// The nonce `authorize` put in the link.
    pub state: Option<String>,
    pub code: Option<String>,
    /// Why access was not granted (`access_denied`); which parameters
    /// Withings sends then is UNCONFIRMED (§1.2), so a missing code counts
    /// as a refusal either way.
    pub error: Option<String>,
}

/// Pure and lenient: the whole address, or only its query (with or
/// without the `?`). Whitespace anywhere is dropped (a terminal may wrap
/// a long line, and a URL has none), a `#fragment` is ignored, and of a
/// parameter given twice the first non-empty value counts.
pub fn parse(text: &str) -> Landing {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let address = compact.split('#').next().unwrap_or_default();
    let query = address.split_once('?').map_or(address, |(_, q)| q);
    let mut landing = Landing::default();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match &*name {
            "state" => &mut landing.state,
            "code" => &mut landing.code,
            "error" => &mut landing.error,
            _ => continue,
        };
        if slot.is_none() && !value.is_empty() {
            *slot = Some(value.into_owned());
        }
    }
    landing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn landing(state: &str, code: Option<&str>, error: Option<&str>) -> Landing {
        Landing {
            state: Some(state.into()),
            code: code.map(String::from),
            error: error.map(String::from),
        }
    }

    #[test]
    fn the_whole_address_or_its_query_gives_state_and_code() {
        let want = landing("ab12", Some("c0de"), None);
        for text in [
            "http://192.168.1.2:8080/oauth/callback?code=c0de&state=ab12",
            "https://relay.example.org/oauth/callback?state=ab12&code=c0de#_=_",
            "?code=c0de&state=ab12",
            "code=c0de&state=ab12",
            "  http://localhost/oauth/callback?code=c0de&state=ab12\r\n",
            "http://localhost/oauth/callback?code=c0\nde&state=ab12",
        ] {
            assert_eq!(parse(text), want, "{text:?}");
        }
    }

    #[test]
    fn a_refusal_has_an_error_and_no_code() {
        assert_eq!(
            parse("http://localhost/cb?error=access_denied&state=ab12&code="),
            landing("ab12", None, Some("access_denied"))
        );
    }

    #[test]
    fn text_without_parameters_gives_nothing() {
        assert_eq!(parse(""), Landing::default());
        assert_eq!(parse("http://localhost/oauth/callback"), Landing::default());
        assert_eq!(
            parse("state=%41%42&state=other").state.as_deref(),
            Some("AB"),
            "decoded, the first one counts"
        );
    }
}

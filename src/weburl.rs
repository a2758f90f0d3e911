//! The few URL facts the relay needs: a validated base URL (scheme, host,
//! path prefix) that routes and API endpoints are joined onto. A full URL
//! crate would cost flash for no gain here.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl {
    pub https: bool,
    /// `host` or `host:port`, as given.
    pub authority: String,
    /// Empty, or a path starting with `/` and not ending with one.
    pub path: String,
}

impl BaseUrl {
    /// Parses `http(s)://host[:port][/path]`. The error says what is wrong
    /// with the text; the caller adds which flag it came from.
    pub fn parse(text: &str) -> Result<BaseUrl, String> {
        let (https, rest) = if let Some(r) = text.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = text.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!("{text:?} does not start with https:// or http://"));
        };
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{text:?} contains spaces or control characters"));
        }
        if rest.contains(['?', '#']) {
            return Err(format!("{text:?} must not have a query or fragment"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("{text:?} has no host name"));
        }
        if let Some((_, port)) = authority
            .rsplit_once(':')
            .filter(|_| !authority.ends_with(']'))
        {
            if port.parse::<u16>().is_err() {
                return Err(format!("{text:?} has a bad port {port:?}"));
            }
        }
        Ok(BaseUrl {
            https,
            authority: authority.to_string(),
            path: path.trim_end_matches('/').to_string(),
        })
    }

    /// The base with `path` (which starts with `/`) appended.
    pub fn join(&self, path: &str) -> String {
        format!("{self}{path}")
    }

    pub fn host(&self) -> &str {
        if self.authority.starts_with('[') {
            return self.authority.split(']').next().map_or("", |h| &h[1..]);
        }
        self.authority.split(':').next().unwrap_or("")
    }

    pub fn port(&self) -> u16 {
        let explicit = if self.authority.starts_with('[') {
            self.authority.rsplit_once("]:").map(|(_, p)| p)
        } else {
            self.authority.split_once(':').map(|(_, p)| p)
        };
        match explicit.and_then(|p| p.parse().ok()) {
            Some(p) => p,
            None if self.https => 443,
            None => 80,
        }
    }

    /// Why Withings would refuse this as a callback (facts sheet §1.1,
    /// §3.2: https, port 443, a public host name), or None if it looks fine.
    pub fn callback_problem(&self) -> Option<&'static str> {
        let host = self.host();
        if !self.https {
            Some("it is http, and Withings only calls https callbacks")
        } else if self.port() != 443 {
            Some("it is not on port 443, the only port Withings reliably calls")
        } else if host == "localhost" || host.parse::<std::net::IpAddr>().is_ok() {
            Some("it is an IP address or localhost, and Withings wants a public host name")
        } else {
            None
        }
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority, self.path)
    }
}

/// `key=value&…`, form-encoded.
pub fn encode_query(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_and_prefix() {
        let u = BaseUrl::parse("https://relay.example.org/withings/").unwrap();
        assert_eq!(u.authority, "relay.example.org");
        assert_eq!(u.path, "/withings");
        assert_eq!(u.port(), 443);
        assert_eq!(
            u.join("/oauth/callback"),
            "https://relay.example.org/withings/oauth/callback"
        );
        let u = BaseUrl::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(u.host(), "127.0.0.1");
        assert_eq!(u.port(), 8080);
        assert_eq!(u.to_string(), "http://127.0.0.1:8080");
    }

    #[test]
    fn rejects_what_is_not_a_base_url() {
        for bad in [
            "relay.example.org",
            "ftp://x",
            "https://",
            "https://a b",
            "https://h/?q=1",
            "https://h:99999",
            "https://u@h",
        ] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn says_why_withings_would_refuse_a_callback() {
        let ok = BaseUrl::parse("https://relay.example.org").unwrap();
        assert_eq!(ok.callback_problem(), None);
        for (url, word) in [
            ("http://relay.example.org", "http"),
            ("https://relay.example.org:8443", "443"),
            ("https://192.168.1.2", "IP"),
            ("https://[::1]", "IP"),
        ] {
            let problem = BaseUrl::parse(url).unwrap().callback_problem().unwrap();
            assert!(problem.contains(word), "{url}: {problem}");
        }
    }

    #[test]
    fn query_encoding_escapes_reserved_characters() {
        assert_eq!(
            encode_query(&[("a", "x y"), ("b", "1&2=3")]),
            "a=x+y&b=1%262%3D3"
        );
    }
}

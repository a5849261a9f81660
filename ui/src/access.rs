//! Who may use the server. Bound to loopback without a token, a request must name a loopback
//! `Host` (so that a web page elsewhere cannot reach the UI by rebinding its own domain to
//! 127.0.0.1); with a token — required on any other address — every request must carry it, as
//! a `Bearer` header, the `binarylm_ui` cookie, or `?token=` (which sets the cookie, so the
//! printed link is all a browser needs).

use std::io::Read;

use axum::http::{header, HeaderMap};

use crate::error::{ApiError, UiError};

/// Shortest token accepted from `--token`.
pub const MIN_TOKEN_LEN: usize = 16;

/// Name of the cookie that carries the token after the first visit.
pub const COOKIE: &str = "binarylm_ui";

#[derive(Debug, Clone)]
pub struct Access {
    token: Option<String>,
}

/// How a request was let in.
#[derive(Debug, PartialEq, Eq)]
pub enum Granted {
    /// Nothing more to do.
    Plain,
    /// The token came in the query: answer with a cookie holding it.
    SetCookie(String),
}

impl Access {
    /// Loopback only, no token.
    pub fn loopback() -> Access {
        Access { token: None }
    }

    /// Every request must carry `token`.
    pub fn token(token: String, host: &str) -> Result<Access, UiError> {
        if token.len() < MIN_TOKEN_LEN {
            return Err(UiError::WeakToken {
                len: token.len(),
                min: MIN_TOKEN_LEN,
                host: host.to_string(),
            });
        }
        Ok(Access { token: Some(token) })
    }

    pub fn token_value(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Whether a request with these headers and query string may be answered.
    pub fn check(&self, headers: &HeaderMap, query: Option<&str>) -> Result<Granted, ApiError> {
        let Some(token) = &self.token else {
            return match headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
                Some(host) if is_loopback_host(host) => Ok(Granted::Plain),
                Some(host) => Err(ApiError::forbidden(format!(
                    "this UI answers requests for 127.0.0.1 or localhost, not `{host}`"
                ))),
                None => Err(ApiError::forbidden("the request has no Host header")),
            };
        };
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "));
        if bearer.is_some_and(|b| same(b, token)) || cookie(headers).is_some_and(|c| same(c, token))
        {
            return Ok(Granted::Plain);
        }
        let from_query = query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter_map(|kv| kv.strip_prefix("token="))
            .any(|t| same(t, token));
        if from_query {
            return Ok(Granted::SetCookie(format!(
                "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
            )));
        }
        Err(ApiError {
            status: axum::http::StatusCode::UNAUTHORIZED,
            message:
                "this UI needs its token: open the link `binarylm ui` printed (it ends in ?token=…)"
                    .into(),
        })
    }
}

/// `127.0.0.1`, `localhost` or `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    matches!(name, "127.0.0.1" | "localhost" | "::1")
}

fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// Equality whose time does not depend on where the first difference is.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// 128 random bits from the kernel, as 32 hex characters.
pub fn generate_token() -> Result<String, UiError> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(UiError::Token)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn loopback_needs_a_loopback_host() {
        let a = Access::loopback();
        for ok in ["127.0.0.1:8470", "localhost:1", "[::1]:80", "localhost"] {
            assert_eq!(
                a.check(&headers(&[(header::HOST, ok)]), None).expect(ok),
                Granted::Plain
            );
        }
        for bad in [
            "evil.example:8470",
            "127.0.0.1.evil.example",
            "10.0.0.1:8470",
        ] {
            let e = a
                .check(&headers(&[(header::HOST, bad)]), None)
                .expect_err(bad);
            assert_eq!(e.status, 403, "{bad}");
        }
        assert!(a.check(&HeaderMap::new(), None).is_err());
    }

    #[test]
    fn a_token_is_checked_on_every_request() {
        let t = "0123456789abcdef0123";
        let a = Access::token(t.into(), "0.0.0.0").expect("token");
        let host = (header::HOST, "10.1.2.3:8470");
        let none = a
            .check(&headers(std::slice::from_ref(&host)), None)
            .expect_err("none");
        assert_eq!(none.status, 401);
        let wrong = a.check(
            &headers(std::slice::from_ref(&host)),
            Some("token=0123456789abcdef0124"),
        );
        assert!(wrong.is_err());
        let bearer = format!("Bearer {t}");
        assert_eq!(
            a.check(
                &headers(&[host.clone(), (header::AUTHORIZATION, &bearer)]),
                None
            )
            .expect("bearer"),
            Granted::Plain
        );
        let c = format!("x=1; {COOKIE}={t}");
        assert_eq!(
            a.check(&headers(&[host.clone(), (header::COOKIE, &c)]), None)
                .expect("cookie"),
            Granted::Plain
        );
        let q = format!("a=1&token={t}");
        assert!(matches!(
            a.check(&headers(&[host]), Some(&q)).expect("query"),
            Granted::SetCookie(_)
        ));
        assert!(matches!(
            Access::token("short".into(), "0.0.0.0"),
            Err(UiError::WeakToken { .. })
        ));
        assert_eq!(generate_token().expect("token").len(), 32);
    }
}

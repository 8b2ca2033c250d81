//! Outbound HTTP to the hosts the task's spec allows (`allow_hosts`; none by default).
//!
//! In a component a request goes through WASI HTTP (with the `http` feature, which brings
//! the `waki` client); the host refuses any host not on the allowlist. Natively (unit
//! tests) the [`crate::testing::MockHost`] answers: a request to a host it does not allow
//! is refused as the sandbox would, an allowed one gets the canned response registered
//! for its method and URL (`MockHost::allow_host`, `MockHost::respond`), and every request
//! is recorded (`testing::requests`).
//!
//! A refused host is a permanent error; a request that fails on the way (no connection, a
//! timeout) is transient. A response with any status is `Ok`: the task decides what a 404
//! or a 503 means ([`Response::error_for_status`] makes 5xx transient and 4xx permanent).

use crate::TaskError;

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<String, TaskError> {
        String::from_utf8(self.body.clone()).map_err(|_| TaskError::permanent("the response body is not UTF-8"))
    }

    /// The body parsed as JSON into `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, TaskError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| TaskError::permanent(format!("the response is not the JSON expected: {e}")))
    }

    /// `self` when the status is 2xx or 3xx; else a transient (5xx, 429) or permanent error.
    pub fn error_for_status(self) -> Result<Response, TaskError> {
        match self.status {
            200..=399 => Ok(self),
            429 | 500..=599 => Err(TaskError::transient(format!("HTTP {}", self.status))),
            status => Err(TaskError::permanent(format!("HTTP {status}"))),
        }
    }
}

/// `GET url`.
pub fn get(url: &str) -> Result<Response, TaskError> {
    request("GET", url, &[], None)
}

/// `POST url` with `body`.
pub fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Response, TaskError> {
    request("POST", url, headers, Some(body))
}

/// Any request. `method` is `GET`, `POST`, `PUT`, `DELETE`, `PATCH` or `HEAD`.
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Result<Response, TaskError> {
    if !["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"].contains(&method) {
        return Err(TaskError::permanent(format!("unsupported HTTP method `{method}`")));
    }
    imp::request(method, url, headers, body)
}

/// The host of `url` (`https://api.example.com:8443/x` → `api.example.com`).
pub fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.split(':').next()?;
    (!host.is_empty()).then_some(host)
}

#[cfg(all(target_arch = "wasm32", feature = "http"))]
mod imp {
    use super::Response;
    use crate::TaskError;

    pub fn request(
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response, TaskError> {
        let client = waki::Client::new();
        let mut req = match method {
            "GET" => client.get(url),
            "POST" => client.post(url),
            "PUT" => client.put(url),
            "DELETE" => client.delete(url),
            "PATCH" => client.patch(url),
            _ => client.head(url),
        };
        for (name, value) in headers {
            let name = waki::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| TaskError::permanent(format!("{method} {url}: header `{name}`: {e}")))?;
            req = req.header(name, *value);
        }
        if let Some(body) = body {
            req = req.body(body.to_vec());
        }
        let failed = |e: &dyn std::fmt::Display| TaskError::transient(format!("{method} {url}: {e}"));
        let response = req.send().map_err(|e| failed(&e))?;
        let status = response.status_code();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let body = response.body().map_err(|e| failed(&e))?;
        Ok(Response { status, headers, body })
    }
}

#[cfg(all(target_arch = "wasm32", not(feature = "http")))]
mod imp {
    use super::Response;
    use crate::TaskError;

    pub fn request(method: &str, url: &str, _: &[(&str, &str)], _: Option<&[u8]>) -> Result<Response, TaskError> {
        Err(TaskError::permanent(format!(
            "{method} {url}: this component was built without sluice-sdk's `http` feature"
        )))
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::Response;
    use crate::TaskError;
    use crate::testing::{Request, with_host};

    pub fn request(
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response, TaskError> {
        let host =
            super::host_of(url).ok_or_else(|| TaskError::permanent(format!("{method} {url}: not an http(s) URL")))?;
        with_host(|h| {
            h.requests.push(Request {
                method: method.to_string(),
                url: url.to_string(),
                headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                body: body.map(<[u8]>::to_vec),
            });
            if !h.allowed_hosts.iter().any(|a| a == host) {
                return Err(TaskError::permanent(format!(
                    "{method} {url}: host `{host}` is not allowed (not in the task's allow_hosts)"
                )));
            }
            h.responses.get(&(method.to_string(), url.to_string())).cloned().ok_or_else(|| {
                TaskError::transient(format!("{method} {url}: the MockHost has no canned response for it"))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, MockHost};

    #[test]
    fn allowed_hosts_get_canned_responses_and_others_are_refused() {
        MockHost::new()
            .allow_host("api.example.com")
            .respond("GET", "https://api.example.com/rates", 200, r#"{"NL": 1.5}"#)
            .install();
        let rates: std::collections::BTreeMap<String, f64> =
            get("https://api.example.com/rates").unwrap().json().unwrap();
        assert_eq!(rates["NL"], 1.5);
        let refused = get("https://evil.example.net/x").unwrap_err();
        assert!(
            refused.is_permanent() && refused.message().contains("host `evil.example.net` is not allowed"),
            "{refused}"
        );
        let unknown = post("https://api.example.com/other", &[("x-k", "v")], b"{}").unwrap_err();
        assert!(unknown.message().contains("no canned response"), "{unknown}");
        let seen = testing::requests();
        assert_eq!(seen.len(), 3);
        assert_eq!((seen[2].method.as_str(), seen[2].body.as_deref()), ("POST", Some(&b"{}"[..])));
    }

    #[test]
    fn hosts_and_statuses() {
        assert_eq!(host_of("https://u:p@api.example.com:8443/x?y"), Some("api.example.com"));
        assert_eq!(host_of("nope"), None);
        let r = |status| Response { status, ..Response::default() };
        assert!(r(204).error_for_status().is_ok());
        assert!(!r(503).error_for_status().unwrap_err().is_permanent());
        assert!(r(404).error_for_status().unwrap_err().is_permanent());
    }
}

//! The authorization-code flow at the HTTP level, as a browser without JavaScript runs it: a cookie jar,
//! redirects followed within the server, the login (and, if shown, consent) form submitted, until the
//! server redirects to the client's redirect_uri with a code. PKCE per
//! [RFC 7636](https://www.rfc-editor.org/rfc/rfc7636).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hyper::StatusCode;
use hyper::header::{self, HeaderName, HeaderValue};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use crate::html;
use crate::http::{Conn, Response, form};
use crate::load::Failure;

/// Redirects and form submissions one sign-in may take before it counts as a loop.
const MAX_HOPS: usize = 8;

/// Cookies, as a browser keeps them for one site.
#[derive(Default)]
pub struct Browser {
    jar: BTreeMap<String, String>,
    header: Option<HeaderValue>,
}

impl Browser {
    /// Takes the `Set-Cookie` headers of a response.
    pub fn absorb(&mut self, response: &Response) {
        let mut changed = false;
        for value in response.headers.get_all(header::SET_COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            let mut parts = value.split(';');
            let Some((name, cookie)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let expired = parts.any(|attr| {
                let attr = attr.trim().to_ascii_lowercase();
                attr == "max-age=0" || attr.starts_with("max-age=-")
            });
            let (name, cookie) = (name.trim().to_owned(), cookie.trim().to_owned());
            if expired || cookie.is_empty() {
                changed |= self.jar.remove(&name).is_some();
            } else if self.jar.get(&name) != Some(&cookie) {
                self.jar.insert(name, cookie);
                changed = true;
            }
        }
        if changed {
            let line = self
                .jar
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            self.header = HeaderValue::from_str(&line).ok();
        }
    }

    /// Whether the jar holds any cookie.
    pub fn has_cookies(&self) -> bool {
        !self.jar.is_empty()
    }

    /// The `Cookie` header to send, if any.
    pub fn cookie(&self) -> Option<(HeaderName, &HeaderValue)> {
        self.header.as_ref().map(|v| (header::COOKIE, v))
    }
}

/// A PKCE verifier and its S256 challenge.
pub struct Pkce {
    /// 43 characters of base64url, from 32 random bytes.
    pub verifier: String,
    /// BASE64URL(SHA256(verifier)).
    pub challenge: String,
}

impl Pkce {
    /// A fresh pair.
    pub fn new() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let verifier = URL_SAFE_NO_PAD.encode(bytes);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Self { verifier, challenge }
    }
}

/// A random `state`.
pub fn random_state() -> String {
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the flow needs to know about the client and the server.
pub struct Client<'a> {
    /// The server's issuer URL, to recognise absolute redirects back to it.
    pub issuer: &'a str,
    /// The client_id.
    pub client_id: &'a str,
    /// The registered redirect URI.
    pub redirect_uri: &'a str,
    /// The scope to ask for.
    pub scope: &'a str,
}

impl Client<'_> {
    /// `/authorize?...` for a code with PKCE S256.
    pub fn authorize_path(&self, state: &str, pkce: &Pkce) -> String {
        format!(
            "/authorize?{}",
            form(&[
                ("response_type", "code"),
                ("client_id", self.client_id),
                ("redirect_uri", self.redirect_uri),
                ("scope", self.scope),
                ("state", state),
                ("code_challenge", &pkce.challenge),
                ("code_challenge_method", "S256"),
            ])
        )
    }

    /// The code in a redirect to the client, after checking `state` (RFC 6749 §4.1.2).
    pub fn code_from(&self, location: &str, state: &str) -> Result<String, Failure> {
        let query = location
            .strip_prefix(self.redirect_uri)
            .and_then(|rest| rest.strip_prefix(['?', '&']))
            .ok_or_else(|| Failure::content("authorize", format!("redirected to {location}")))?;
        let mut code = None;
        let mut returned_state = None;
        let mut error = None;
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "code" => code = Some(v.into_owned()),
                "state" => returned_state = Some(v.into_owned()),
                "error" => error = Some(v.into_owned()),
                _ => {}
            }
        }
        if let Some(error) = error {
            return Err(Failure {
                key: format!("authorize error={error}"),
                detail: location.to_owned(),
            });
        }
        if returned_state.as_deref() != Some(state) {
            return Err(Failure::content("authorize", "state did not come back unchanged"));
        }
        code.ok_or_else(|| Failure::content("authorize", format!("no code in {location}")))
    }

    /// A path on the server for a `Location` or a form `action`, relative to `current`.
    fn local_path(&self, target: &str, current: &str) -> Result<String, Failure> {
        let issuer = self.issuer.trim_end_matches('/');
        if target.is_empty() {
            return Ok(current.to_owned());
        }
        if let Some(rest) = target.strip_prefix(issuer) {
            return Ok(if rest.is_empty() {
                "/".to_owned()
            } else {
                rest.to_owned()
            });
        }
        if target.starts_with('/') && !target.starts_with("//") {
            return Ok(target.to_owned());
        }
        if target.starts_with('?') {
            let base = current.split('?').next().unwrap_or("/");
            return Ok(format!("{base}{target}"));
        }
        if !target.contains("://") {
            let base = current.split('?').next().unwrap_or("/");
            let dir = base.rsplit_once('/').map_or("", |(d, _)| d);
            return Ok(format!("{dir}/{target}"));
        }
        Err(Failure::content(
            "sign-in",
            format!("sent off the server to {target}"),
        ))
    }

    /// Runs `/authorize` from `path` to the redirect with a code, signing in and consenting on the
    /// way if the server asks. Returns the code.
    pub async fn authorize(
        &self,
        conn: &mut Conn,
        browser: &mut Browser,
        state: &str,
        pkce: &Pkce,
        username: &str,
        password: &str,
    ) -> Result<String, Failure> {
        let mut path = self.authorize_path(state, pkce);
        let mut response = get(conn, browser, &path, "authorize").await?;
        for _ in 0..MAX_HOPS {
            browser.absorb(&response);
            if response.status.is_redirection() {
                let location = response
                    .location()
                    .ok_or_else(|| Failure::content("authorize", "a redirect without Location"))?
                    .to_owned();
                if location.starts_with(self.redirect_uri) {
                    return self.code_from(&location, state);
                }
                path = self.local_path(&location, &path)?;
                response = get(conn, browser, &path, "follow").await?;
                continue;
            }
            if response.status != StatusCode::OK {
                return Err(Failure::status("sign-in", &response));
            }
            let page = String::from_utf8_lossy(&response.body);
            let forms = html::forms(&page);
            let chosen = forms
                .iter()
                .find(|f| f.has_password())
                .or_else(|| forms.iter().find(|f| f.method == "post"))
                .ok_or_else(|| {
                    Failure::content("sign-in", format!("a page with no form: {}", snippet(&page)))
                })?;
            let fields = chosen.fill(username, password);
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(fields.iter())
                .finish();
            let target = self.local_path(&chosen.action, &path)?;
            let step = if chosen.has_password() { "login" } else { "consent" };
            response = if chosen.method == "post" {
                let cookie = browser.cookie();
                let headers: Vec<_> = cookie.iter().map(|(n, v)| (n.clone(), *v)).collect();
                conn.post_form(&target, &headers, body)
                    .await
                    .map_err(|e| Failure::transport(step, &e))?
            } else {
                let sep = if target.contains('?') { '&' } else { '?' };
                get(conn, browser, &format!("{target}{sep}{body}"), step).await?
            };
            path = target;
        }
        Err(Failure::content("sign-in", format!("more than {MAX_HOPS} hops")))
    }
}

async fn get(conn: &mut Conn, browser: &Browser, path: &str, step: &str) -> Result<Response, Failure> {
    let cookie = browser.cookie();
    let headers: Vec<_> = cookie.iter().map(|(n, v)| (n.clone(), *v)).collect();
    conn.get(path, &headers)
        .await
        .map_err(|e| Failure::transport(step, &e))
}

fn snippet(text: &str) -> String {
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client<'static> {
        Client {
            issuer: "http://127.0.0.1:8080",
            client_id: "c",
            redirect_uri: "http://127.0.0.1:9/cb",
            scope: "read",
        }
    }

    #[test]
    fn the_s256_challenge_matches_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        assert_eq!(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert_eq!(Pkce::new().verifier.len(), 43);
    }

    #[test]
    fn the_code_is_taken_from_the_redirect_only_with_the_same_state() {
        let c = client();
        assert_eq!(
            c.code_from("http://127.0.0.1:9/cb?code=abc&state=s1", "s1").ok(),
            Some("abc".to_owned())
        );
        assert!(
            c.code_from("http://127.0.0.1:9/cb?code=abc&state=s2", "s1")
                .is_err()
        );
        assert_eq!(
            c.code_from("http://127.0.0.1:9/cb?error=access_denied&state=s1", "s1")
                .err()
                .map(|f| f.key),
            Some("authorize error=access_denied".to_owned())
        );
    }

    #[test]
    fn paths_resolve_against_the_server() {
        let c = client();
        let ok = |t: &str, cur: &str| c.local_path(t, cur).ok();
        assert_eq!(
            ok("http://127.0.0.1:8080/login?x=1", "/authorize"),
            Some("/login?x=1".into())
        );
        assert_eq!(ok("/consent", "/login"), Some("/consent".into()));
        assert_eq!(ok("", "/login?r=1"), Some("/login?r=1".into()));
        assert_eq!(ok("?step=2", "/login?r=1"), Some("/login?step=2".into()));
        assert_eq!(ok("consent", "/oauth/login"), Some("/oauth/consent".into()));
        assert!(c.local_path("https://evil.example/", "/").is_err());
    }

    #[test]
    fn cookies_are_kept_replaced_and_expired() {
        let mut browser = Browser::default();
        let mut response = Response {
            status: StatusCode::OK,
            headers: hyper::HeaderMap::new(),
            body: bytes::Bytes::new(),
        };
        let set = |r: &mut Response, v: &'static str| {
            r.headers.append(header::SET_COOKIE, HeaderValue::from_static(v));
        };
        set(&mut response, "sid=1; Path=/; HttpOnly; SameSite=Lax");
        set(&mut response, "csrf=x; Path=/");
        browser.absorb(&response);
        assert_eq!(
            browser.cookie().map(|(_, v)| v.clone()),
            Some(HeaderValue::from_static("csrf=x; sid=1"))
        );
        response.headers.clear();
        set(&mut response, "csrf=; Max-Age=0");
        set(&mut response, "sid=2; Path=/");
        browser.absorb(&response);
        assert_eq!(
            browser.cookie().map(|(_, v)| v.clone()),
            Some(HeaderValue::from_static("sid=2"))
        );
    }
}

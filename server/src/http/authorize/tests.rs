use super::cookies::insecure_issuer;
use super::pages::csp_source;
use super::*;

#[test]
fn the_csp_source_of_a_redirect_uri_is_its_origin_or_private_scheme() {
    assert_eq!(
        csp_source("https://app.example.com:8443/cb?x=1#f").as_deref(),
        Some("https://app.example.com:8443")
    );
    assert_eq!(
        csp_source("http://127.0.0.1:3000").as_deref(),
        Some("http://127.0.0.1:3000")
    );
    assert_eq!(
        csp_source("http://[::1]:3000/cb").as_deref(),
        Some("http://[::1]:3000")
    );
    assert_eq!(
        csp_source("com.example.app:/oauth2redirect").as_deref(),
        Some("com.example.app:")
    );
    assert_eq!(csp_source("https://evil.example; script-src *"), None);
    assert_eq!(csp_source("no-scheme"), None);
}

#[test]
fn only_a_plain_http_loopback_issuer_goes_without_secure_cookies() {
    assert!(insecure_issuer("http://localhost:8080"));
    assert!(insecure_issuer("http://127.0.0.1:8080/base"));
    assert!(insecure_issuer("http://[::1]:8080"));
    assert!(!insecure_issuer("https://localhost:8080"));
    assert!(!insecure_issuer("http://example.com"));
    assert!(!insecure_issuer("http://localhost.example.com"));
}

#[test]
fn html_is_escaped() {
    assert_eq!(
        escape("<a href=\"x\">'&'</a>"),
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
    );
}

#[test]
fn codes_go_in_the_query_and_tokens_in_the_fragment_each_with_the_issuer() {
    assert_eq!(
        redirect_with(
            "https://app/cb?x=1",
            ResponseType::Code,
            "https://idp",
            &[("code", "c"), ("state", "s 1")]
        ),
        "https://app/cb?x=1&code=c&state=s+1&iss=https%3A%2F%2Fidp"
    );
    assert_eq!(
        redirect_with(
            "https://app/cb",
            ResponseType::Token,
            "https://idp",
            &[("access_token", "t")]
        ),
        "https://app/cb#access_token=t&iss=https%3A%2F%2Fidp"
    );
}

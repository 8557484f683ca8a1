//! Random bodies and headers to /token, /introspect and /revoke never produce a 5xx.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::support::*;

#[derive(Clone, Debug)]
struct Input {
    path: &'static str,
    content_type: Option<String>,
    authorization: Option<Vec<u8>>,
    body: Vec<u8>,
}

fn form_body() -> impl Strategy<Value = Vec<u8>> {
    let names = prop::sample::select(vec![
        "grant_type",
        "client_id",
        "client_secret",
        "scope",
        "token",
        "token_type_hint",
        "x",
        "",
    ]);
    let values = prop_oneof![
        Just("client_credentials".to_owned()),
        Just("billing".to_owned()),
        Just(secret_of("billing")),
        Just("read write".to_owned()),
        Just("a.b.c".to_owned()),
        "[ -~]{0,40}",
        ".{0,20}",
    ];
    prop::collection::vec((names, values), 0..6).prop_map(|pairs| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (n, v) in pairs {
            s.append_pair(n, &v);
        }
        s.finish().into_bytes()
    })
}

fn input() -> impl Strategy<Value = Input> {
    let path = prop::sample::select(vec!["/token", "/introspect", "/revoke"]);
    let content_type = prop::option::of(prop_oneof![
        Just("application/x-www-form-urlencoded".to_owned()),
        Just("application/json".to_owned()),
        Just("application/x-www-form-urlencoded; charset=ISO-8859-1".to_owned()),
        "[ -~]{0,30}",
    ]);
    let authorization = prop::option::of(prop_oneof![
        Just(basic_header("billing", &secret_of("billing")).into_bytes()),
        "Basic [A-Za-z0-9+/=%:]{0,40}".prop_map(String::into_bytes),
        "(Bearer|basic|Digest) [ -~]{0,30}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..40),
    ]);
    let body = prop_oneof![form_body(), prop::collection::vec(any::<u8>(), 0..600)];
    (path, content_type, authorization, body).prop_map(|(path, content_type, authorization, body)| Input {
        path,
        content_type,
        authorization,
        body,
    })
}

fn random_requests_never_get_a_5xx(backend: Backend) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(async {
        let server = TestServer::start(backend).await;
        server.register(&client("billing").build()).await;
        server.register(&client("reports").opaque().build()).await;
        server
    });
    let mut runner = TestRunner::new(Config {
        cases: 128,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&input(), |input| {
        let status = runtime.block_on(async {
            let mut request = server.http.post(server.url(input.path)).body(input.body.clone());
            if let Some(ct) = &input.content_type
                && let Ok(value) = reqwest::header::HeaderValue::from_str(ct)
            {
                request = request.header("content-type", value);
            }
            if let Some(auth) = &input.authorization
                && let Ok(value) = reqwest::header::HeaderValue::from_bytes(auth)
            {
                request = request.header("authorization", value);
            }
            request.send().await.map(|r| r.status().as_u16())
        });
        let status = status.map_err(|e| TestCaseError::fail(format!("request failed: {e}")))?;
        prop_assert!(status < 500, "{input:?} got {status}");
        Ok(())
    });
    runtime.block_on(server.stop());
    result.unwrap();
}

#[test]
fn random_requests_never_get_a_5xx_sqlite() {
    random_requests_never_get_a_5xx(Backend::Sqlite);
}

#[test]
fn random_requests_never_get_a_5xx_postgres() {
    random_requests_never_get_a_5xx(Backend::Postgres);
}

//! The hourly purge: what has expired leaves the database, and nothing still usable does.

use sqlx::Row as _;

use crate::authorize::{Browser, authorize_url, get_code, s256, spa};
use crate::on_both_backends;
use crate::support::*;
use crate::users::{PASSWORD, create_user, password_client, password_grant};

const TABLES: [&str; 4] = [
    "sessions",
    "authorization_codes",
    "refresh_tokens",
    "login_throttle",
];

async fn rows(server: &TestServer) -> Vec<(&'static str, i64)> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&server.db_url).await.unwrap();
    let mut counts = Vec::new();
    for table in TABLES {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}")))
            .fetch_one(&pool)
            .await
            .unwrap();
        counts.push((table, row.try_get::<i64, _>("n").unwrap()));
    }
    pool.close().await;
    counts
}

async fn expired_sessions_codes_grants_and_failure_counters_are_purged(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register(&spa("spa")).await;
    server.register(&password_client("app").build()).await;
    create_user(&server, "alice", PASSWORD).await;
    let challenge = s256("a-verifier-that-is-long-enough-for-rfc-7636-rules-0123456789");
    let url = authorize_url(
        &server,
        &[
            ("response_type", "code"),
            ("client_id", "spa"),
            ("redirect_uri", crate::authorize::REDIRECT),
            ("scope", "read"),
            ("state", "xyz 123"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    get_code(&mut Browser::new(), &server, &url).await;
    assert_eq!(
        password_grant(&server, "app", "alice", PASSWORD, None)
            .await
            .status(),
        200
    );
    password_grant(&server, "app", "bob", "guess", None).await;
    let every_table_has_rows = |counts: &[(&str, i64)]| counts.iter().all(|(_, n)| *n > 0);

    // Nothing has expired yet: the purge keeps everything.
    gatehouse_server::server::purge(server.state()).await.unwrap();
    let before = rows(&server).await;
    assert!(every_table_has_rows(&before), "{before:?}");

    // Two days on, the session (8 h), the code (60 s, remembered for an hour), the refresh token
    // family (1 h) and the failure counter (15 min window, kept a day) are all over.
    server.clock.advance(2 * 24 * 3600);
    gatehouse_server::server::purge(server.state()).await.unwrap();
    let after = rows(&server).await;
    assert!(after.iter().all(|(_, n)| *n == 0), "{after:?}");
    server.stop().await;
}

on_both_backends!(expired_sessions_codes_grants_and_failure_counters_are_purged);

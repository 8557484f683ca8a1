//! Integration tests of the token server over real HTTP. Every test runs twice: on a fresh SQLite file
//! and on a fresh PostgreSQL database (from GATEHOUSE_TEST_POSTGRES_URL, by default the server that
//! tests/services/postgres.sh starts). Without PostgreSQL the `postgres` variants fail.

// This whole crate is tests; clippy's allow-unwrap-in-tests only sees #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod authorize;
mod binary;
mod browser;
mod conformance;
mod fuzz;
mod interop;
mod introspection;
mod keys;
mod ownership;
mod password;
mod purge;
mod refresh;
mod replicas;
mod standalone;
mod subjects;
mod support;
mod token;
mod users;

//! End-to-end tests against a real kube-apiserver. One binary, one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admission;
mod api;
mod operator;
mod packaging;

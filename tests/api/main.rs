//! One integration-test binary: every module speaks to the real app over HTTP.

#![allow(clippy::panic, reason = "tests fail by panicking")]

mod helpers;

mod accounts;
mod email;
mod foundation;
mod limits;
mod reload;
mod replicas;
mod tokens;

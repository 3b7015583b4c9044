//! One integration-test binary: every module speaks to the real app over HTTP.

#![allow(clippy::panic, reason = "tests fail by panicking")]

mod helpers;

mod abuse;
mod accounts;
mod browser;
mod cli;
mod email;
mod faults;
mod foundation;
mod integrity;
mod interop;
mod keys;
mod limits;
mod ops;
mod pages;
mod reload;
mod replicas;
mod rp_openidconnect;
mod tokens;

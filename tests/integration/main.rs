//! The one integration-test binary (ripgrep style): real rbldnsd, real SQLite
//! files, the real `rblwatch` binary. Modules are split by topic.

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub, dead_code)]

mod actions;
mod catalog;
mod cli;
mod config;
mod daemon;
mod delist;
mod deploy;
mod direct;
mod dnsbl;
mod faults;
mod feeds;
mod hostile;
mod impact;
mod lab;
mod layers;
mod mail;
mod mirror;
mod plugin;
mod postmaster;
mod ranges;
mod screens;
mod senders;
mod service;
mod snds;
mod util;
mod web;

//! rblwatch keeps an organisation's outbound mail servers off DNS blacklists
//! and stops them from being abused as backscatter (reverse-NDR) sources.
//!
//! # Layout
//!
//! Data flows one way; each stage is one module:
//!
//! ```text
//!  config ──► daemon (scheduler) ──► probes ────────────────► evaluator ──► store ──► actions ──► web
//!  (toml)     ticks, reload,          engine (DNSBL sweeps,    (pure state   (SQLite,  (hooks,     (status page,
//!             shutdown                 list health)             transitions,  WAL)      alerts,     JSON API,
//!                                      mail (telemetry)         spikes,                 outbox)     /metrics)
//!                                      smtp_probe (backscatter) events)
//! ```
//!
//! * [`config`]: `rblwatch.toml`, parsed then validated ([`config::Config`]); unknown keys rejected.
//! * [`catalog`]: the DNSBL catalog from `lists.d/` ([`catalog::ListDef`]), embedded in the binary.
//! * [`replies`]: what receivers' rejection texts mean, from `replies.d/` ([`replies::ReplyCatalog`]), embedded too.
//! * [`target`]: IPs, CIDR ranges (expanded lazily) and domains.
//! * [`dns`]: RFC 5782 query names, the wire format and a lean multiplexed UDP client.
//! * [`verdict`]: what one answer means ([`verdict::Verdict`]), a pure function of the answer and the list.
//! * [`health`]: list health from the RFC 5782 test points ([`health::ListHealth`]), pure.
//! * [`engine`]: runs health checks and sweeps, bounded and rate-capped per list.
//! * [`mail`]: mail-server telemetry sources (Postfix, its log, Exim, commands, HTTP JSON, Prometheus) and delivery results ([`mail::delivery`]).
//! * [`smtp_probe`]: the backscatter probe (RCPT to a random address, never DATA).
//! * [`spike`]: spike detection on mail metrics, pure.
//! * [`evaluator`]: the listing state machine ([`evaluator::Transition`]) and [`evaluator::Event`], pure.
//! * [`store`]: SQLite history (WAL, migrations) on its own thread; a read-only pool for the web.
//! * [`daemon`]: the scheduler and the wiring between the stages; shutdown is a parameter.
//! * [`actions`]: hooks ([`actions::hooks`]) and alerts ([`actions::alerts`]) driven by committed events.
//! * [`web`]: status page, JSON API and Prometheus metrics (axum, minijinja).
//! * [`cli`]: the `rblwatch` command line.
//! * [`secret`]: values that never print.
//!
//! Listings, list health, spikes and probe results are all [`evaluator::Event`]s
//! on one path: committed to the store in the same transaction as the state
//! they come from, then acted on by [`actions`] (which follows the events table
//! with cursors, so nothing is lost across a restart) and shown by [`web`].

pub mod actions;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod dns;
pub mod engine;
pub mod evaluator;
pub mod event;
pub mod health;
pub mod mail;
pub mod replies;
pub mod secret;
pub mod smtp_probe;
pub mod spike;
pub mod store;
pub mod target;
pub mod time;
pub mod verdict;
pub mod web;

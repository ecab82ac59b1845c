//! rblwatch keeps an organisation's outbound mail servers off DNS blacklists
//! and stops them from being abused as backscatter (reverse-NDR) sources.
//!
//! # Layout
//!
//! Data flows one way; each stage is one module:
//!
//! ```text
//!  config ──► scheduler ──► probes ──────────► evaluator ──► store ──► actions ──► web
//!  (toml)     (daemon)      engine (DNSBL)     (pure state    (SQLite)  (hooks,     (status page,
//!                            health             transitions,             alerts)     API, metrics)
//!                                               events)
//! ```
//!
//! * [`config`]: `rblwatch.toml`, parsed then validated ([`config::Config`]).
//! * [`catalog`]: the DNSBL catalog from `lists.d/` ([`catalog::ListDef`]).
//! * [`target`]: IPs, CIDR ranges (expanded lazily) and domains.
//! * [`dns`]: RFC 5782 query names, the wire format and a lean multiplexed UDP client.
//! * [`verdict`]: what one answer means ([`verdict::Verdict`]), a pure function of the answer and the list.
//! * [`health`]: list health from the RFC 5782 test points ([`health::ListHealth`]), pure.
//! * [`engine`]: runs health checks and sweeps, bounded and rate-capped per list.
//! * [`evaluator`]: the listing state machine, pure: (state, observation) → (state, [`evaluator::Transition`]).
//! * [`store`]: SQLite history (WAL, migrations), on its own thread.
//! * [`daemon`]: the scheduler and the wiring between the stages; shutdown is a parameter.
//! * [`cli`]: the `rblwatch` command line.
//! * [`secret`]: values that never print.
//!
//! Listings, spikes and probe results all become [`evaluator::Event`]s on the
//! same path: evaluator → store → hooks/alerts → web.

pub mod actions;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod dns;
pub mod engine;
pub mod evaluator;
pub mod health;
pub mod mail;
pub mod secret;
pub mod smtp_probe;
pub mod spike;
pub mod store;
pub mod target;
pub mod verdict;
pub mod web;

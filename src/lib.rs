//! rblwatch keeps an organisation's outbound mail servers off DNS blacklists
//! and stops them from being abused as backscatter (reverse-NDR) sources.
//!
//! # Layout
//!
//! Data flows one way. Each arrow below points from a stage to the stage that
//! consumes its output, and imports run against the arrows: a module may
//! import only modules declared *before* it in this file (the `pub mod` lines
//! below are in that order, and `scripts/check-layers`, run by the test
//! command, fails the build when a module imports a later one).
//!
//! ```text
//!  foundation (any stage may use): spelling, time, secret, process, target, catalog, replies, event
//!
//!  config ──► probes ─────────────────────► evaluator ──► store ──► actions ──► web
//!  (toml,     dns, verdict, health, engine   spike,        (SQLite,  (hooks,     (status page,
//!   plain     (DNSBL sweeps, list health),   evaluator,    WAL)      alerts,     JSON API,
//!   settings) mail (telemetry, rejections,   impact, senders         outbox)     /metrics)
//!             outbound ledger),
//!             smtp_probe (backscatter),      (pure state
//!             audit (MTA posture)            transitions, joins)
//!
//!  daemon: drives the stages on their schedules (imports all of them; only cli imports it)
//!  cli:    the command line, wires everything (imports all; nothing imports it)
//! ```
//!
//! Listings, list health, spikes and probe results are all [`event::Event`]s
//! on one path: committed to the store in the same transaction as the state
//! they come from, then acted on by [`actions`] (which follows the events table
//! with cursors, so nothing is lost across a restart) and shown by [`web`]. The
//! web reads the running daemon through the [`web::Live`] trait, which the
//! daemon implements, so no stage reaches back into the daemon.

// Foundation: vocabulary every stage shares.
/// Closed sets spelled as fixed strings ([`spelling::closed_set!`]): one table per set gives every spelling.
pub mod spelling;
/// Time: the clock, display and duration parsing.
pub mod time;
/// Values that never print (keys, passwords, tokens).
pub mod secret;
/// Running hooks and command sources: no shell, cleared environment, process groups, bounded output.
pub mod process;
/// IPs, CIDR ranges (expanded lazily) and domains.
pub mod target;
/// The DNSBL catalog from `lists.d/` ([`catalog::ListDef`]), embedded in the binary.
pub mod catalog;
/// The receiver-reply catalog from `replies.d/`: what a remote server's rejection means.
pub mod replies;
/// Outbound message classes and their rules from `senders.d/` (data, checked at config load).
pub mod classes;
/// [`event::Event`], its kind, severity and typed subject.
pub mod event;

// Config: `rblwatch.toml`, parsed then validated into plain settings.
pub mod config;
/// Query budgets: how often each list may be swept within its daily limit (pure).
pub mod budget;

// Probes: ask the world.
/// RFC 5782 query names, the wire format and a lean multiplexed UDP client.
pub mod dns;
/// What one answer means ([`verdict::Verdict`]), pure.
pub mod verdict;
/// List health from the RFC 5782 test points, pure.
pub mod health;
/// Lists answered from local mirrors of their rbldnsd data files: indexes, reloads, intersections (pure lookups).
pub mod mirror;
/// Runs health checks and sweeps, bounded and rate-capped per list.
pub mod engine;
/// Range targets as wholes: mirrored lists by intersection, IPv6 prefixes through DNS as chosen /64s.
pub mod prefixes;
/// Mail-server telemetry sources (Postfix, its log, Exim, commands, HTTP JSON, Prometheus).
pub mod mail;
/// Receivers' own data: DMARC aggregate reports (pure parser; Maildir and IMAP readers), Microsoft SNDS exports, Google Postmaster Tools (pure parsers; HTTPS fetch).
pub mod feeds;
/// The backscatter probe (RCPT to a random address, never DATA).
pub mod smtp_probe;
/// The read-only MTA posture audit (`postconf`, `exim -bP`): settings that cause backscatter and listings.
pub mod audit;

// Evaluator: pure decisions over what the probes saw.
/// Spike detection on mail metrics, pure.
pub mod spike;
/// The listing state machine ([`evaluator::Transition`]), pure.
pub mod evaluator;
/// Baselines and bursts per sending account and per class of automated mail (pure).
pub mod senders;
/// The joined verdict: listings × receivers' rejections, backscatter sources (pure).
pub mod impact;

// Store, actions, web.
/// The actions' closed sets (why a hook ran, how it ended, where an alert stands), declared before the store that records them.
pub mod runs;
/// SQLite history (WAL, migrations) on its own thread; a read-only pool for the web.
pub mod store;
/// The current state read once ([`status::StatusSnapshot`]) and the one headline verdict made from it.
pub mod status;
/// Hooks and alerts driven by committed events.
pub mod actions;
/// Status page, JSON API and Prometheus metrics (axum, minijinja).
pub mod web;

// The drivers.
/// The scheduler and the wiring between the stages; shutdown is a parameter.
pub mod daemon;
/// The `rblwatch` command line.
pub mod cli;

//! Receivers' own data about our mail: DMARC aggregate reports read from a
//! Maildir or an IMAP mailbox, and Gmail's view from Postmaster Tools ([`postmaster`]). Parsing is pure ([`dmarc`]); reading a
//! mailbox is I/O at the edge ([`mailbox`]).

pub mod dmarc;
pub mod mailbox;
pub mod postmaster;
pub mod senders;

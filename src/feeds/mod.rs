//! Receivers' own data about our mail: DMARC aggregate reports read from a
//! Maildir or an IMAP mailbox, Microsoft SNDS's exports ([`snds`]) and Gmail's
//! view of our domains from Google Postmaster Tools ([`postmaster`]). Parsing is
//! pure ([`dmarc`], [`snds`], [`postmaster`]); reading a mailbox or an API is I/O
//! at the edge ([`mailbox`], [`postmaster::client`]).

pub mod dmarc;
pub mod mailbox;
pub mod postmaster;
pub mod senders;
pub mod snds;

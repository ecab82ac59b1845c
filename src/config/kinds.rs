//! The closed sets a config value names (`kind = "webhook"`, `mta = "exim"`,
//! `starttls = "off"` …). They sit in their own file because both the serde
//! mirror ([`super::raw`]) and the validated settings use them: with them
//! here, `raw` imports no validating module and none of those is needed to
//! read the file. Each is re-exported by the module of its area.

use serde::{Deserialize, Serialize};

use crate::event::EventKind;

/// A channel's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Generic JSON POST.
    Webhook,
    /// Slack incoming webhook.
    Slack,
    /// Microsoft Teams: a Workflows webhook (Adaptive Card) or, with
    /// `format = "messagecard"`, an old Office 365 connector.
    Teams,
    /// Email over SMTP.
    Email,
}

/// The body a Teams channel sends (`format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum TeamsFormat {
    /// An Adaptive Card in a message envelope: what Teams Workflows webhooks take (the default).
    #[default]
    #[serde(rename = "adaptivecard", alias = "adaptive_card")]
    AdaptiveCard,
    /// The legacy MessageCard, for old Office 365 connectors (which Workflows replace).
    #[serde(rename = "messagecard", alias = "message_card")]
    MessageCard,
}

/// How email reaches the SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// STARTTLS, required (the default).
    #[default]
    Starttls,
    /// Implicit TLS (port 465).
    Tls,
    /// Plain SMTP: only for a local relay on loopback.
    None,
}

/// Whether the probe upgrades to TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StartTls {
    /// Use STARTTLS when the server offers it (the default). The certificate is
    /// not verified: the probe only needs the RCPT answer, and many MX hosts
    /// use self-signed certificates. A failed handshake makes the result inconclusive.
    #[default]
    Opportunistic,
    /// Stay in plain text.
    Off,
}

/// Which events a spike rule raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpikeKind {
    /// `queue_spike` / `queue_spike_cleared`.
    QueueSpike,
    /// `ndr_spike` / `ndr_spike_cleared`.
    NdrSpike,
}

impl SpikeKind {
    /// The raise and clear events.
    pub fn events(self) -> (EventKind, EventKind) {
        match self {
            SpikeKind::QueueSpike => (EventKind::QueueSpike, EventKind::QueueSpikeCleared),
            SpikeKind::NdrSpike => (EventKind::NdrSpike, EventKind::NdrSpikeCleared),
        }
    }
}

crate::spelling::closed_set! {
    /// Which MTA an audit reads.
    pub enum AuditMta {
        /// Postfix, through `postconf`.
        Postfix = "postfix",
        /// Exim, through `exim -bP`.
        Exim = "exim",
    }
}

impl AuditMta {
    /// The command run when the config names none.
    pub fn default_command(self) -> Vec<String> {
        match self {
            AuditMta::Postfix => vec!["postconf".into()],
            AuditMta::Exim => vec!["exim".into()],
        }
    }
}

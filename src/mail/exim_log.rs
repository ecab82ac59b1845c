//! Counting in the Exim main log (the file is followed like the Postfix log:
//! [`super::postfix_log::read_new`]).
//!
//! Exim writes one line per event with a flag after the message id: `<=`
//! arrival, `=>` delivery, `==` deferral, `**` failure. A bounce Exim
//! generates arrives as `<= <> R=<id of the bounced message>`, so NDRs are
//! counted by those lines (one per bounce message); failed recipients by `**`.

use super::postfix_log::LogCounts;

/// Counts the interesting lines of a chunk of Exim main log (pure).
pub fn count(text: &str) -> LogCounts {
    let mut c = LogCounts::default();
    for line in text.lines() {
        if line.contains(" <= <> ") && line.contains(" R=") {
            c.ndr_generated += 1.0;
        } else if line.contains(" rejected RCPT ")
            && (line.contains("Unrouteable address")
                || line.contains("User unknown")
                || line.contains("Unknown user"))
        {
            c.rcpt_rejected_unknown += 1.0;
        } else if line.contains(" == ") {
            c.deferred += 1.0;
        } else if line.contains(" ** ") {
            c.bounced_recipients += 1.0;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real mainlog lines of the lab's Exim (tests/fixtures/README.md).
    const LOG: &str = "2026-11-23 03:08:49 1xVKMW-0004C7-0f <= victim@victim.test H=(attacker.test) [127.0.0.1] P=esmtp S=473 id=20261123030849.1@attacker.test
2026-11-23 03:08:49 1xVKMW-0004C7-0f ** nouser-3251427743@example.test: Unrouteable address
2026-11-23 03:08:49 1xVKN3-0004NX-2p <= <> R=1xVKMW-0004C7-0f U=Debian-exim P=local S=1747
2026-11-23 03:08:50 1xVKN3-0004Lk-1l == victim@victim.test R=remote T=remote_smtp defer (111): Connection refused
2026-11-23 03:08:51 H=(attacker.test) [127.0.0.1] F=<victim@victim.test> rejected RCPT <nouser@example.test>: Unrouteable address
2026-11-23 03:08:52 1xVKN3-0004NX-2p Completed
";

    #[test]
    fn counts_real_lines() {
        assert_eq!(
            count(LOG),
            LogCounts {
                ndr_generated: 1.0,
                rcpt_rejected_unknown: 1.0,
                deferred: 1.0,
                bounced_recipients: 1.0,
            }
        );
        assert_eq!(count("\u{0}garbage <= <>\n"), LogCounts::default());
    }
}

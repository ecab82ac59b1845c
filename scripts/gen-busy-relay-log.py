#!/usr/bin/env python3
"""A synthetic busy-relay Postfix log for the outbound-ledger benchmark (BENCHMARKS.md, issue 23).

gen-busy-relay-log.py OUT [LINES] [ACCOUNTS]: about LINES lines (default 1,000,000) of real-format Postfix
lines (smtpd with sasl_username, pickup, cleanup, header_checks WARN, qmgr, smtp/local/error deliveries with
remote replies, bounce notifications, removed) from ACCOUNTS distinct SASL logins (default 100,000), every
one of them used; one leaked login sends 5 % of the messages; bounces, forwards and DMARC reports mixed in.
Deterministic (seeded), so runs compare.
"""
import random
import sys

out = sys.argv[1]
target = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
accounts = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000
rnd = random.Random(23)
seq = 0


def qid():
    global seq
    seq += 1
    return f"{seq:011X}"


REPLIES = [
    "host gmail-smtp-in.l.google.com[142.250.1.26] said: 550-5.7.1 [192.0.2.10] Our system has detected that this message is likely unsolicited mail. (in reply to end of DATA command)",
    "host mta5.am0.yahoodns.net[67.195.204.72] said: 421 4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred due to unexpected volume or user complaints (in reply to MAIL FROM command)",
    "host outlook-com.olc.protection.outlook.com[52.101.1.1] said: 550 5.7.1 Unfortunately, messages from [192.0.2.10] weren't sent. (S3150) (in reply to RCPT TO command)",
]
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "example.net", "example.org", "mail.test", "corp.test"]

n = 0
with open(out, "w") as f:
    def w(s):
        global n
        f.write(s)
        f.write("\n")
        n += 1

    i = 0
    while n < target:
        t = f"Dec  6 {(i // 3600) % 24:02}:{(i // 60) % 60:02}:{i % 60:02} relay"
        q = qid()
        kind = rnd.random()
        if i < accounts:
            login = f"user{i:06}@example.test"
        elif kind < 0.05:
            login = "leaked@example.test"
        else:
            login = f"user{rnd.randrange(accounts):06}@example.test"
        i += 1
        if kind < 0.80 or i <= accounts:
            w(f"{t} postfix/smtpd[{1000 + i % 50}]: {q}: client=client{i % 200}.example.test[203.0.113.{i % 250}], sasl_method=PLAIN, sasl_username={login}")
            w(f"{t} postfix/cleanup[2001]: {q}: message-id=<{q}@example.test>")
            w(f"{t} postfix/qmgr[3001]: {q}: from=<{login}>, size={500 + i % 5000}, nrcpt=2 (queue active)")
            for _ in range(2):
                d = rnd.choice(DOMAINS)
                rc = f"r{rnd.randrange(10**6)}@{d}"
                r = rnd.random()
                if r < 0.9:
                    w(f"{t} postfix/smtp[{4000 + i % 80}]: {q}: to=<{rc}>, relay=mx.{d}[198.51.100.{i % 250}]:25, delay=0.5, delays=0.1/0/0.2/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as X{i})")
                else:
                    st = "bounced" if r < 0.95 else "deferred"
                    w(f"{t} postfix/smtp[{4000 + i % 80}]: {q}: to=<{rc}>, relay=mx.{d}[198.51.100.{i % 250}]:25, delay=0.5, delays=0.1/0/0.2/0.2, dsn=5.7.1, status={st} ({rnd.choice(REPLIES)})")
            w(f"{t} postfix/qmgr[3001]: {q}: removed")
        elif kind < 0.88:
            # inbound, forwarded by a virtual alias
            w(f"{t} postfix/smtpd[1100]: {q}: client=mx.sender{i % 300}.test[198.51.100.{i % 250}]")
            w(f"{t} postfix/qmgr[3001]: {q}: from=<news@sender{i % 300}.test>, size=3000, nrcpt=1 (queue active)")
            w(f"{t} postfix/smtp[4100]: {q}: to=<me{i % 900}@gmail.com>, orig_to=<fwd{i % 900}@example.test>, relay=gmail-smtp-in.l.google.com[142.250.1.26]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 2.0.0 OK)")
            w(f"{t} postfix/qmgr[3001]: {q}: removed")
        elif kind < 0.95:
            # a bounce of a user's message
            b = qid()
            w(f"{t} postfix/bounce[5001]: {q}: sender non-delivery notification: {b}")
            w(f"{t} postfix/qmgr[3001]: {b}: from=<>, size=2100, nrcpt=1 (queue active)")
            w(f"{t} postfix/smtp[4200]: {b}: to=<someone{i % 5000}@forged.test>, relay=none, delay=0.02, delays=0/0.01/0/0.01, dsn=4.4.1, status=deferred (connect to forged.test[192.0.2.99]:25: Connection refused)")
            w(f"{t} postfix/qmgr[3001]: {b}: removed")
        else:
            # a DMARC aggregate report from the local report generator
            w(f"{t} postfix/pickup[6001]: {q}: uid=110 from=<opendmarc>")
            w(f"{t} postfix/cleanup[2001]: {q}: warning: header Subject: Report Domain: example.test Submitter: relay.example.test Report-ID: <{q}> from local; from=<noreply-dmarc@example.test> to=<rua@spammer{i % 3}.test>: rblwatch")
            w(f"{t} postfix/qmgr[3001]: {q}: from=<noreply-dmarc@example.test>, size=4000, nrcpt=1 (queue active)")
            w(f"{t} postfix/smtp[4300]: {q}: to=<rua@spammer{i % 3}.test>, relay=mx.spammer{i % 3}.test[203.0.113.200]:25, delay=1, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 ok)")
            w(f"{t} postfix/qmgr[3001]: {q}: removed")
print(f"{out}: {n} lines, {min(i, accounts)} accounts in the first {accounts} messages, {i} messages", file=sys.stderr)

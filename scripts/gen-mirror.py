#!/usr/bin/env python3
"""A synthetic ZEN-sized mirror in rbldnsd format (issue 25 benchmarks).

gen-mirror.py DIR [N4] [N6] writes DIR/zen.ip4set with N4 IPv4 entries (default
10,000,000: 94 % single addresses, 5 % CIDR blocks /24-/30, 1 % dash ranges,
one in 10 in 10.0.0.0/8 so a /8 check finds listings, a few exclusions) and
DIR/zen6.ip6tset with N6 IPv6 /64s (default 1,000,000, in 2001:db8::/32).
Deterministic (seeded)."""
import random
import sys

d = sys.argv[1]
n4 = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000_000
n6 = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
r = random.Random(25)
rb = r.getrandbits


def ip(a):
    return f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}"


with open(f"{d}/zen.ip4set", "w") as f:
    w = f.write
    w("$SOA 60 ns.zen.test hostmaster.zen.test 0 600 60 3600 10\n$TTL 10\n")
    w(":127.0.0.2:https://www.spamhaus.example/query/ip/$\n127.0.0.2\n")
    buf = []
    for i in range(n4):
        a = (10 << 24) | rb(24) if i % 10 == 0 else (1 + r.randrange(222)) << 24 | rb(24)
        k = i % 100
        if k < 94:
            line = ip(a) if k % 3 else f"{ip(a)} :{2 + k % 3}:Listed $ ({k})"
        elif k < 99:
            bits = 24 + (i >> 7) % 7
            a &= (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF
            line = f"{ip(a)}/{bits} :10:Policy block $"
        else:
            line = f"{ip(a)}-{ip(min(a + rb(10), 0xFFFFFFFF))}"
        buf.append(line)
        if i % 1000 == 999:
            buf.append("!" + ip(a))
        if len(buf) >= 100_000:
            w("\n".join(buf))
            w("\n")
            buf = []
    if buf:
        w("\n".join(buf))
        w("\n")

with open(f"{d}/zen6.ip6tset", "w") as f:
    w = f.write
    w("$SOA 60 ns.zen.test hostmaster.zen.test 0 600 60 3600 10\n:127.0.0.3:IPv6 $ listed\n")
    buf = []
    for i in range(n6):
        buf.append(f"2001:db8:{rb(16):x}:{rb(16):x}")
        if len(buf) >= 100_000:
            w("\n".join(buf))
            w("\n")
            buf = []
    if buf:
        w("\n".join(buf))
        w("\n")

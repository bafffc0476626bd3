#!/usr/bin/env python3
"""Turns benches/compare.sh's raw results into the markdown table.

Input: a TSV file, one line per client run: KEY, ROUND, VALUE (a number, or FAIL).
Each figure is the median over rounds. Derived figures (gains, RSS growth) are computed
within each round first, then the median is taken. Every ratio is oriented so that
> 1 means dugong (us) is better: us/peer for rates and gains, peer/us for memory.

usage: report.py RAW_TSV CLIENT_CPUS PROXY_CPU BIG_CPU TLS_CPU [FETCH_CPU]
"""

import statistics
import sys
from collections import defaultdict


def load(path):
    runs = defaultdict(dict)  # key -> round -> value (float or None for FAIL)
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3:
                continue
            key, rnd, value = parts[0], int(parts[1]), parts[2]
            try:
                runs[key][rnd] = float(value)
            except ValueError:
                runs[key][rnd] = None
    return runs


class Fig:
    """A median figure, or a failure / absence."""

    def __init__(self, values, failed):
        self.values = values
        self.failed = failed

    @property
    def ok(self):
        return bool(self.values) and not self.failed

    @property
    def median(self):
        return statistics.median(self.values)

    def fmt(self, unit):
        if self.failed:
            return "FAIL"
        if not self.values:
            return "n/a"
        v = self.median
        if unit == "MB/s":
            v = v / 1e6
        if unit == "ms":
            s = "%.2f" % v
        elif unit in ("x",):
            s = "%.2fx" % v
        elif abs(v) >= 100:
            s = "{:,.0f}".format(v)
        else:
            s = "%.1f" % v
        if len(self.values) > 1:
            lo, hi = min(self.values), max(self.values)
            if unit == "MB/s":
                lo, hi = lo / 1e6, hi / 1e6
            if unit in ("x", "ms"):
                s += " (%.2f–%.2f)" % (lo, hi)
            elif abs(v) >= 100:
                s += " ({:,.0f}–{:,.0f})".format(lo, hi)
            else:
                s += " (%.1f–%.1f)" % (lo, hi)
        return s


def fig(runs, key):
    r = runs.get(key, {})
    failed = any(v is None for v in r.values())
    return Fig([v for v in r.values() if v is not None], failed)


def derived(runs, fn, *keys):
    """Per-round fn(values of keys) over rounds where all keys have a value."""
    rs = [runs.get(k, {}) for k in keys]
    failed = any(v is None for r in rs for v in r.values())
    rounds = set.intersection(*(set(r) for r in rs)) if rs else set()
    vals = []
    for rnd in sorted(rounds):
        xs = [r[rnd] for r in rs]
        if any(x is None for x in xs):
            continue
        try:
            vals.append(fn(*xs))
        except ZeroDivisionError:
            continue
    return Fig(vals, failed)


def ratio(us, peer, lower_is_better=False):
    if not (us.ok and peer.ok):
        return "—"
    a, b = us.median, peer.median
    if lower_is_better:
        a, b = b, a
    if b <= 0:
        return "—"
    return "%.2f" % (a / b)


def main():
    raw, client_cpus, proxy_cpu, big_cpu, tls_cpu = sys.argv[1:6]
    fetch_cpu = sys.argv[6] if len(sys.argv) > 6 else "0"
    runs = load(raw)
    rows = []  # (measurement, unit, us Fig, peer name, peer Fig, lower_is_better)

    def add(name, unit, us, peers, lower=False):
        for peer_name, peer in peers:
            rows.append((name, unit, us, peer_name, peer, lower))

    for cpu in client_cpus.split():
        where = "client on CPU %s%s" % (cpu, " (server's)" if cpu == "0" else "")
        p = "lo.cpu%s." % cpu
        add("100 B GET, depth 1, loopback, %s; us: blocking" % where, "req/s",
            fig(runs, p + "us.blocking.d1"),
            [("wrk", fig(runs, p + "wrk.d1")), ("ureq", fig(runs, p + "ureq.d1")),
             ("py-dugong", fig(runs, p + "py.blocking.d1"))])
        for d in (16, 64):
            add("100 B GET, depth %d, loopback, %s; us: cofun" % (d, where), "req/s",
                fig(runs, p + "us.cofun.d%d" % d),
                [("wrk (batches)", fig(runs, p + "wrk.d%d" % d)),
                 ("py-dugong", fig(runs, p + "py.pipeline.d%d" % d))])

    where = "5 ms RTT proxy on CPU %s, client on CPU %s" % (proxy_cpu, client_cpus.split()[0])
    add("100 B GET, depth 1, %s; us: blocking" % where, "req/s",
        fig(runs, "rtt.us.blocking.d1"),
        [("wrk", fig(runs, "rtt.wrk.d1")), ("py-dugong", fig(runs, "rtt.py.blocking.d1"))])
    for d in (16, 64):
        add("100 B GET, depth %d, %s; us: cofun" % (d, where), "req/s",
            fig(runs, "rtt.us.cofun.d%d" % d),
            [("wrk (batches)", fig(runs, "rtt.wrk.d%d" % d)),
             ("py-dugong", fig(runs, "rtt.py.pipeline.d%d" % d))])
    div = lambda a, b: a / b  # noqa: E731
    for d in (16, 64):
        add("gain of depth %d over depth 1, %s" % (d, where), "x",
            derived(runs, div, "rtt.us.cofun.d%d" % d, "rtt.us.blocking.d1"),
            [("wrk (batches)", derived(runs, div, "rtt.wrk.d%d" % d, "rtt.wrk.d1")),
             ("py-dugong", derived(runs, div, "rtt.py.pipeline.d%d" % d,
                                   "rtt.py.blocking.d1"))])

    where = "client on CPU %s" % big_cpu
    add("100 MiB GET, reused 1 MiB buffer, %s" % where, "MB/s", fig(runs, "big.get.us"),
        [("curl", fig(runs, "big.get.curl")), ("py-dugong", fig(runs, "big.get.py"))])
    add("100 MiB PUT to a reading sink (204), %s" % where, "MB/s", fig(runs, "big.put.us"),
        [("curl -T", fig(runs, "big.put.curl")), ("py-dugong", fig(runs, "big.put.py"))])
    add("1 GiB GET, against the loopback ceiling (iperf3 -R, one connection), %s" % where, "MB/s",
        fig(runs, "big.g1.us"), [("iperf3", fig(runs, "big.g1.iperf"))])

    add("peak RSS, trivial run (one 100 B GET, same 1 MiB buffer; curl: plain GET)", "KiB", fig(runs, "rss.trivial.us"),
        [("curl", fig(runs, "rss.trivial.curl")), ("py-dugong", fig(runs, "rss.trivial.py"))],
        lower=True)
    add("peak RSS, streaming a 1 GiB body", "KiB", fig(runs, "rss.big.us"),
        [("curl", fig(runs, "rss.big.curl")), ("py-dugong", fig(runs, "rss.big.py"))],
        lower=True)
    sub = lambda a, b: a - b  # noqa: E731
    growth = lambda who: derived(runs, sub, "rss.big." + who, "rss.trivial." + who)  # noqa: E731
    us_growth = growth("us")
    for peer_name, who in (("curl", "curl"), ("py-dugong", "py")):
        rows.append(("peak RSS growth, 1 GiB body minus trivial", "KiB", us_growth, peer_name,
                     growth(who), None))

    where = "TLS, loopback, client on CPU %s" % tls_cpu
    add("100 B GET, depth 1, %s; us: blocking" % where, "req/s", fig(runs, "tls.us.blocking.d1"),
        [("wrk", fig(runs, "tls.wrk.d1")), ("ureq (rustls)", fig(runs, "tls.ureq.d1")),
         ("curl", fig(runs, "tls.curl.d1"))])
    add("100 B GET, depth 16, %s; us: cofun" % where, "req/s", fig(runs, "tls.us.cofun.d16"),
        [("wrk (batches)", fig(runs, "tls.wrk.d16"))])
    add("100 MiB GET, reused 1 MiB buffer, %s" % where, "MB/s", fig(runs, "tls.big.get.us"),
        [("curl", fig(runs, "tls.big.get.curl"))])
    add("100 MiB PUT to a reading sink (204), %s" % where, "MB/s", fig(runs, "tls.big.put.us"),
        [("curl -T", fig(runs, "tls.big.put.curl"))])
    tls_growth = derived(runs, sub, "tls.rss.big.us", "tls.rss.trivial.us")
    rows.append(("peak RSS growth over TLS, 1 GiB body minus trivial", "KiB", tls_growth,
                 "plain HTTP (above)", us_growth, None))
    add("TCP connect + TLS handshake, fresh connection (median), %s" % where, "ms",
        fig(runs, "tls.hs.us"), [("curl", fig(runs, "tls.hs.curl"))], lower=True)

    where = "loopback, client on CPU %s%s" % (fetch_cpu, " (server's)" if fetch_cpu == "0" else "")
    for d, peer_name in ((1, "wrk"), (16, "wrk (batches)")):
        add("100 B GET, depth %d, %s; us: the fetch CLI (wall time, start included)" % (d, where),
            "req/s", fig(runs, "fetch.cli.d%d" % d), [(peer_name, fig(runs, "fetch.wrk.d%d" % d))])

    print("| measurement | unit | dugong (us) | peer | peer figure | ratio (>1: we are better) |")
    print("|---|---|--:|---|--:|--:|")
    for name, unit, us, peer_name, peer, lower in rows:
        if not (us.values or peer.values or us.failed or peer.failed):
            continue  # a group of rows left out of this run (ROWS=...)
        if lower is None:  # growth: a ratio of near-zero numbers says nothing
            r = "—"
        else:
            r = ratio(us, peer, lower)
        print("| %s | %s | %s | %s | %s | %s |"
              % (name, unit, us.fmt(unit), peer_name, peer.fmt(unit), r))
    busy_table(runs, big_cpu, tls_cpu)


def busy_table(runs, big_cpu, tls_cpu):
    """How busy the server's CPU and the client's were during each big transfer: a row that
    is bound by the server (CPU 0 near 100%, the client's CPU with time to spare) measures
    the server and the kernel, whichever client runs it."""
    rows = [
        ("100 MiB GET", "big.get", (("dugong", "us"), ("curl", "curl"), ("py-dugong", "py")),
         big_cpu),
        ("100 MiB PUT", "big.put", (("dugong", "us"), ("curl -T", "curl"), ("py-dugong", "py")),
         big_cpu),
        ("1 GiB GET", "big.g1", (("dugong", "us"), ("iperf3 -R", "iperf")), big_cpu),
        ("TLS 100 MiB GET", "tls.big.get", (("dugong", "us"), ("curl", "curl")), tls_cpu),
        ("TLS 100 MiB PUT", "tls.big.put", (("dugong", "us"), ("curl -T", "curl")), tls_cpu),
    ]
    lines = []
    for name, prefix, clients, cpu in rows:
        for who, key in clients:
            server = fig(runs, "%s.%s.busy.server" % (prefix, key))
            client = fig(runs, "%s.%s.busy.client" % (prefix, key))
            if server.values or client.values:
                same = " (the same CPU)" if cpu == "0" else ""
                lines.append("| %s | %s | %s | %s%s |"
                             % (name, who, server.fmt("%"), client.fmt("%"), same))
    if not lines:
        return
    print()
    print("CPU busy during the big transfers, in % of each client run's wall time (user, system,")
    print("irq, softirq and steal from /proc/stat; median and range over rounds); the server,")
    print("nginx (iperf3's own for its row), is on CPU 0, the client on CPU %s (TLS: CPU %s):"
          % (big_cpu, tls_cpu))
    print()
    print("| transfer | client | server CPU busy (%) | client CPU busy (%) |")
    print("|---|---|--:|--:|")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()

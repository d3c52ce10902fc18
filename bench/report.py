#!/usr/bin/env python3
"""Turns the oha JSON results of bench/lookup into BENCHMARKS.md (stdout)."""
import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone

work, units, duration, conns, half, load_secs = sys.argv[1:7]


def load(name):
    with open(os.path.join(work, name + ".json")) as f:
        return json.load(f)


def ms(seconds):
    return f"{seconds * 1000:.2f} ms"


def codes(d):
    return ", ".join(f"{k}: {v}" for k, v in sorted((d.get("statusCodeDistribution") or {}).items())) or "none"


def cpu():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_gib():
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return "unknown"


def pg_version():
    try:
        return subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


pb, pp = load("peak-base"), load("peak-portal")
hb, hp = load("half-base"), load("half-portal")
rps_b, rps_p = pb["summary"]["requestsPerSec"], pp["summary"]["requestsPerSec"]
ratio = rps_p / rps_b
p99_hb, p99_hp = hb["latencyPercentiles"]["p99"], hp["latencyPercentiles"]["p99"]
p99_ratio = p99_hp / p99_hb
ok_tp = "met" if ratio >= 0.75 else "NOT met"
ok_p99 = "met" if p99_ratio <= 2.0 else "NOT met"

print(f"""# Benchmarks

Produced by `bench/lookup` on {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}. Every number
below is measured in the same run against a baseline on the same database, so read the ratios,
not the absolute figures.

Machine: {os.cpu_count()} cores ({cpu()}), {mem_gib()} RAM, {platform.system()} {platform.release()}, {pg_version()}.
The load generator (oha), the server under test and PostgreSQL share these cores.

## Lookup: `GET /check?serial=…` with random existing serials

{int(units):,} units in the database (loaded set-based in {float(load_secs):.1f} s). The portal runs as
`cargo run --release` would (own PostgreSQL, default pool, rate limit off); the baseline is
`examples/baseline.rs`: actix-web, one tokio-postgres connection per worker, a prepared
statement for the same indexed query, and a small escaped page.

### Peak throughput ({duration} s closed loop, {conns} connections)

| server | requests/s | p50 | p99 | responses |
|---|---:|---:|---:|---|
| baseline | {rps_b:,.0f} | {ms(pb['latencyPercentiles']['p50'])} | {ms(pb['latencyPercentiles']['p99'])} | {codes(pb)} |
| portal | {rps_p:,.0f} | {ms(pp['latencyPercentiles']['p50'])} | {ms(pp['latencyPercentiles']['p99'])} | {codes(pp)} |

**Throughput ratio portal / baseline: {ratio:.2f}** (goal ≥ 0.75: {ok_tp}).

### Latency at half the baseline's peak ({half} requests/s open loop, {duration} s, latency-corrected)

| server | achieved requests/s | p50 | p99 | responses |
|---|---:|---:|---:|---|
| baseline | {hb['summary']['requestsPerSec']:,.0f} | {ms(hb['latencyPercentiles']['p50'])} | {ms(p99_hb)} | {codes(hb)} |
| portal | {hp['summary']['requestsPerSec']:,.0f} | {ms(hp['latencyPercentiles']['p50'])} | {ms(p99_hp)} | {codes(hp)} |

**p99 ratio portal / baseline: {p99_ratio:.2f}** (goal ≤ 2: {ok_p99}).

## How to run

```
bench/lookup                               # 1,000,000 units, 20 s per measurement
UNITS=1000000 DURATION=30 CONNS=64 bench/lookup
bench/import                               # import of 1,000,000 rows against raw COPY
bench/count/run                            # reconcile 1,000,000 scans against 10,000,000 units
```
""")

#!/usr/bin/env python3
"""Turns bench/lookup's oha results (JSON files in the work directory given as the argument) into
the "## Lookup:" section of BENCHMARKS.md (stdout). Everything else comes from the environment
bench/lookup sets: the data set (UNITS MODELS AT_A AT_B SALES REGS TWINS SEED LOAD_MS), the run
(DURATION CONNS ROUNDS WARMUP MACHINE) and the portal's memory (HWM_KB RSS_KB RSS_START_KB)."""
import glob
import json
import os
import statistics
import sys
from datetime import datetime, timezone

work = sys.argv[1]
E = os.environ
units, models, twins = int(E["UNITS"]), int(E["MODELS"]), int(E["TWINS"])
at_a, at_b, sales, regs = (int(E[k]) for k in ("AT_A", "AT_B", "SALES", "REGS"))
duration, conns, rounds = int(E["DURATION"]), int(E["CONNS"]), int(E["ROUNDS"])
hwm_kb, rss_kb, rss_start_kb = int(E["HWM_KB"]), int(E["RSS_KB"]), int(E["RSS_START_KB"])
ENDPOINTS = [("check", "`GET /check?serial=…` (lookup page)"), ("status", "`GET /api/v1/status?serial=…` (JSON)")]
LEVELS = [25, 50, 80]


def runs(prefix):
    files = sorted(glob.glob(os.path.join(work, prefix + "-*.json")))
    if not files:
        sys.exit(f"no results for {prefix}")
    return [json.load(open(f)) for f in files]


def rps(d):
    return d["summary"]["requestsPerSec"]


def pct(d, p):
    return (d.get("latencyPercentiles") or {}).get(p) or 0.0


def med(ds, f):
    return statistics.median(f(d) for d in ds)


def ms(seconds):
    return f"{seconds * 1000:.2f} ms"


def mb(kb):
    return kb * 1024 / 1e6


def verdict(ok):
    return "met" if ok else "NOT met"


def responses(ds):
    """Status codes and client errors over runs, e.g. `200: 94393`."""
    codes, errors = {}, {}
    for d in ds:
        for k, v in (d.get("statusCodeDistribution") or {}).items():
            codes[k] = codes.get(k, 0) + v
        for k, v in (d.get("errorDistribution") or {}).items():
            # Requests in flight when the time is up: not errors of the server.
            if k != "aborted due to deadline":
                errors[k] = errors.get(k, 0) + v
    text = ", ".join(f"{k}: {v}" for k, v in sorted(codes.items())) or "none"
    if errors:
        text += "; errors: " + ", ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
    return text


def rate(ep, level):
    return int(open(os.path.join(work, f"rate-{ep}-{level}")).read())


peak, open_loop, goals = [], [], []
for ep, label in ENDPOINTS:
    pb, pp = runs(f"peak-baseline-{ep}"), runs(f"peak-portal-{ep}")
    b, p = med(pb, rps), med(pp, rps)
    ratio = p / b
    goals.append((label, ratio))
    rounds_text = " / ".join(", ".join(f"{rps(d):,.0f}" for d in ds) for ds in (pb, pp))
    peak.append(
        f"| {label} | {b:,.0f} | {p:,.0f} | **{ratio:.2f}** | {rounds_text} "
        f"| {ms(med(pb, lambda d: pct(d, 'p99')))} | {ms(med(pp, lambda d: pct(d, 'p99')))} "
        f"| {responses(pb)} / {responses(pp)} |"
    )
    for level in LEVELS:
        ob, op = runs(f"open{level}-baseline-{ep}"), runs(f"open{level}-portal-{ep}")
        b99, p99 = med(ob, lambda d: pct(d, "p99")), med(op, lambda d: pct(d, "p99"))
        r99 = p99 / b99 if b99 else float("inf")
        if level == 50:
            goals[-1] = goals[-1] + (r99,)
        per_round = ""
        if len(ob) > 1:
            per_round = " (" + ", ".join(f"{pct(d, 'p99') * 1000:.1f}" for d in ob) + " / " + \
                ", ".join(f"{pct(d, 'p99') * 1000:.1f}" for d in op) + ")"
        open_loop.append(
            f"| {label} | {level} % | {rate(ep, level):,} | {med(ob, rps):,.0f} / {med(op, rps):,.0f} "
            f"| {ms(med(ob, lambda d: pct(d, 'p50')))} / {ms(med(op, lambda d: pct(d, 'p50')))} "
            f"| {ms(b99)} / {ms(p99)}{per_round} | {'**' if level == 50 else ''}{r99:.2f}{'**' if level == 50 else ''} "
            f"| {responses(ob)} / {responses(op)} |"
        )

hwm_ok = mb(hwm_kb) <= 150
goal_lines = []
for label, ratio, r99 in goals:
    goal_lines.append(
        f"- {label}: throughput **{ratio:.2f}** × the baseline (goal ≥ 0.75: {verdict(ratio >= 0.75)}); "
        f"p99 at half the baseline's peak **{r99:.2f}** × the baseline's (goal ≤ 2: {verdict(r99 <= 2)})."
    )
goal_lines.append(
    f"- Portal memory under this load: peak RSS (VmHWM) **{mb(hwm_kb):.0f} MB** (goal ≤ 150 MB: "
    f"{verdict(hwm_ok)}); RSS {mb(rss_kb):.0f} MB after the load, {mb(rss_start_kb):.0f} MB when it had "
    f"just started. The portal's own process; its PostgreSQL's processes are not counted."
)
goals_text = "\n".join(goal_lines)
peak_text = "\n".join(peak)
open_text = "\n".join(open_loop)
load_s = int(E.get("LOAD_MS", "0")) / 1000
sold_from = at_a + at_b

print(f"""## Lookup: `GET /check` and `GET /api/v1/status`, random existing serials of {units:,} units

Produced by `bench/lookup` on {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}. Machine: {E['MACHINE']}.
The load generator (oha), the server under test and PostgreSQL share these cores, so read the
ratios (both servers measured in the same run, alternating, on the same database), not the
absolute figures.

Data set: `bench/dataset.sql` (seed {E['SEED']}, loaded set-based in {load_s:.0f} s) in the portal's own
PostgreSQL: {units:,} units of {models} product models (serials BC{0:08d} … BC{units - 1:08d}; unit g is
of model g mod {models}), {at_a + at_b:,} in stock, {2 * sales:,} sold in {sales:,} sales, {regs:,} of them
registered, the rest shipped; {twins:,} twin units on a second model carry serials of the first
model's units (such a serial answers two products); one launched recall covers the units of
models 0 to 9 (5 % of lookups answer "recalled", a quarter of those "remedied"). Lookups ask
for random existing serials (oha `--rand-regex-url` over `BC` and the unit number), twins
included. Each server starts with the tables and indexes lookups read in PostgreSQL's shared
buffers (`pg_prewarm`), as after a while in service.

- **portal**: as `cargo run --release` starts it (own PostgreSQL, default pool, outbox worker
  on, per-address lookup limit off): the lookup page and the JSON status as they are served,
  recall state and warranty included;
- **baseline**: `examples/baseline.rs`, the least a server can do: actix-web, four
  tokio-postgres connections per worker used in turn, and the same two indexed reads as the
  portal sent together on one of them (pipelined: one round trip), as prepared statements: the
  units by `serial_key = $1` (or `= $1 OR = $2` for a serial typed in lower case) with their
  model and lot, each model's case rule applied, and the launched or closed recalls of the units
  under the same keys; then either a small page with its fields HTML-escaped (`/check`) or the
  portal's JSON fields serialized by serde_json (`/status`: query, matches with GTIN, serial,
  product, recall status and campaigns, warranty status and end).

### Peak throughput ({duration} s closed loop, {conns} connections, median of {rounds} alternating round(s))

| endpoint | baseline req/s | portal req/s | portal / baseline | rounds, req/s (baseline / portal) | p99 baseline | p99 portal | responses (baseline / portal) |
|---|---:|---:|---:|---|---:|---:|---|
{peak_text}

### Open loop at 25 %, 50 % and 80 % of the baseline's peak ({duration} s, `oha -q`, latency-corrected)

The rate is that share of the baseline's median peak above, for both servers; at 50 % the
median of {rounds} alternating round(s) (each round's p99 in ms in brackets), the others once.

| endpoint | load | requests/s asked | achieved (baseline / portal) | p50 (baseline / portal) | p99 (baseline / portal) | p99 portal / baseline | responses (baseline / portal) |
|---|---:|---:|---|---|---|---:|---|
{open_text}

### Goals

{goals_text}

Fixes, before → after (each measured by this script at the time, on 1,000,000 units of one model,
`GET /check` only):

1. Purchase dates, warranty extensions and inheritance were first read from their own tables, two
   more joins per lookup: 0.58 × the baseline's throughput, and at half the baseline's peak the
   portal fell behind (p99 202 × the baseline's). They now live on the unit and lot rows the
   lookup already reads: 0.76 ×, p99 1.87 ×.

At 10,000,000 units of 200 models (this data set; both endpoints):

2. PostgreSQL's `shared_buffers` was its default 128 MB: the units and their index did not fit
   and every lookup copied its pages in again from the kernel's cache (a fifth of PostgreSQL's
   time in `perf`). The embedded cluster now takes a quarter of the machine's memory, 128 MB to
   4 GB (`PORTAL_PG_SHARED_BUFFERS_MB`). This helped the baseline more than the portal: the
   portal was at 0.41 × (2,514 against 6,144 req/s for `/check`).
3. `pg_stat_statements` showed the portal's lookup statement planned on every call (37,353
   plans for 37,337 calls; 7.2 s planning against 2.7 s executing): with `serial_key = ANY($1)`
   PostgreSQL judged a generic plan costlier than one made for each array and never kept one.
   One serial's one or two keys are now compared with `=`, and the unit's recalls, which went
   through `sql_query` and were prepared again for every lookup, through diesel's query builder
   (both now 96 plans for 38,000 calls): `/check` 2,514 → 4,620 req/s, `/api/v1/status` 2,637 →
   4,938 (15 s runs). The first run after this fix measured the portal at 1.06 × and 1.37 × a
   baseline that still used `= ANY($1)` and so had the same flaw; the baseline now uses `=` too
   (and four connections per worker): it went from about 6,800 to 18,600 req/s.
4. Once the recall benchmark had launched its campaigns (12,000,000 `recall_units` rows), the
   unit-recalls statement was planned on every call again (33,448 plans for 33,432 lookups;
   4.1 s planning against 3.6 s executing), for the same reason: it now takes one unit by `=`.
   `/check` 3,343 → 4,710 lookups/s (10 s runs with `pg_stat_statements`).

Against a baseline that reads recalls too (until then it read none and was at about 19,800 req/s
for `/check`; reading them, pipelined, about 15,000), on this data set with one recall launched
and the caches warm (items 5 to 7 measured with 15 s closed-loop runs, `/check`):

5. `perf` showed the portal at 0.22 ms of PostgreSQL CPU per lookup against the baseline's
   0.07 ms, and its own threads at 0.13 ms against 0.03 ms: each lookup took a pooled connection
   for each of its two statements, and PostgreSQL woke, read one message, answered and slept for
   every one of them, while the baseline's concurrent requests share four connections per worker
   and their statements travel together. Single lookups now do the same (`src/db/readers.rs`):
   each HTTP worker keeps `PORTAL_LOOKUP_CONNECTIONS` (2) connections of its own that all of its
   lookups share, and a lookup sends its unit and recall statements at once (the recalls by the
   serial's keys rather than by the unit found). `/check` 5,200 → 9,200-13,000 req/s,
   `/api/v1/status` 5,100 → 8,600-12,000 (0.62 and 0.54 × the corrected baseline in the first
   full run).
6. Every restart of the portal starts its PostgreSQL with empty shared buffers, and the
   benchmark's lookups over 10,000,000 units had not warmed them in 5 s: both servers are now
   measured warm (`pg_prewarm`, above). Both gained; the baseline more.
7. A unit's model came joined to it: 13 more columns to read, send and decode per lookup, the
   description among them. Single lookups now take it from the catalogue each process holds
   (reloaded every 30 s and by its own edits; a model newer than that is read): `/check`
   about 9,200 → 10,900-13,300 req/s, `/api/v1/status` 8,600 → 10,700-12,200 (short runs; the
   figures above are this script's).
8. `/metrics` labels every request with its route pattern. At first that came from actix's
   `HttpRequest::match_pattern`, which walks every route again, dynamic ones by regular
   expression, on each request; in that run `/check` was at 0.62 × and its p99 at half load
   4.3 × the baseline's. The pattern is now remembered per address shape (the path with its
   matched segments named; `src/web/metrics.rs`); the figures above are with it. This machine's
   speed varied a lot in these runs (the baseline's peak rounds from 11,600 to 15,900 req/s
   within one run), so read the rounds as well as the medians.

What limits the throughput now (`perf -a` and a DWARF profile of the portal during `/check` at
peak, `pg_stat_statements`): per lookup, the portal's own threads use about 0.085 ms of CPU
against the baseline's 0.031 ms, and its PostgreSQL about 20 % more than the baseline's (the
same two statements; the portal's carry a few more columns). In the portal process, the
database future is 28 % of the time; diesel-async writes each statement's SQL out again on every
execution even when it is prepared (`walk_ast`, `push_identifier`: 8 %); context switches
(`finish_task_switch`) 16 %; the rest is HTTP, the middleware every page has and the minimal
server lacks (session cookie, security headers, request id and metrics, the per-address limit),
row decoding into owned strings, and the page itself. The load generator takes about 14 % of the
two cores, which both servers share with PostgreSQL. What would move it: the two lookup
statements on tokio-postgres prepared statements held per connection (no SQL rebuilt per call),
fewer decoded columns, and in production PostgreSQL and the load on cores of their own. At half
the baseline's peak, the load a real day would be run at, the p99 goal is met.
""")

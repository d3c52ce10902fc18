#!/usr/bin/env python3
"""Writes the scan file of bench/count (CSV gtin,serial, shuffled) and the category counts
the portal must find for it, as JSON.

    scans.py OUT.csv EXPECTED.json SCANS UNITS MODELS AT_A AT_B TWINS

The scans are of the benchmark data set (bench/dataset.sql): unit g has serial BC<g, 8 digits>
and model g mod MODELS, whose GTIN is 09506001 and the model number in five digits, then the
check digit (as model_gtin in bench/lib.sh); units [0, AT_A) are in stock at BENCH-A (the
counted location), [AT_A, AT_A + AT_B) in stock at BENCH-B, the rest sold, registered or
shipped; TWINS units of model 1 reuse the serials of model 0's units 0, MODELS, 2 × MODELS, …
(those serials, scanned without a GTIN, name two products).

The mix: 80 % in stock here with GTIN, 1 % of those scanned twice, 1 % in stock here without
GTIN, min(1,000, TWINS) twin serials without GTIN (ambiguous), 10 % in stock elsewhere (BENCH-B),
5 % sold, registered or shipped (spread over all of them), the rest unknown serials (BX…) with
a GTIN. Twin units are left out of every category but the ambiguous one.
"""
import json
import random
import sys

out, expected_path = sys.argv[1], sys.argv[2]
scans, units, models, at_a, at_b, twins = (int(v) for v in sys.argv[3:9])


def gtin(i):
    body = f"09506001{i:05d}"
    s = sum(int(d) * (3 if p % 2 == 0 else 1) for p, d in enumerate(body))
    return body + str((10 - s % 10) % 10)


GTINS = [gtin(i) for i in range(models)]


def twin(g):
    return g % models == 0 and g // models < twins


def sn(g):
    return f"BC{g:08d}"


def units_in(lo, hi, n, stride=1):
    """n units of [lo, hi), every stride-th, twins left out."""
    got = []
    g = lo
    while len(got) < n and g < hi:
        if not twin(g):
            got.append(g)
        g += stride
    assert len(got) == n, f"[{lo}, {hi}) holds fewer than {n} units for the scan mix"
    return got


ambiguous = min(1000, twins)
matched = scans * 80 // 100          # with GTIN, in stock here
repeats = scans // 100               # the first of those scanned again
bare = scans // 100                  # in stock here, scanned without GTIN (unique serials)
wrong = scans * 10 // 100            # with GTIN, in stock at the other location
not_in_stock = scans * 5 // 100      # with GTIN, sold, registered or shipped
unexpected = scans - matched - repeats - bare - ambiguous - wrong - not_in_stock
assert unexpected > 0, "SCANS too small for the scan mix"

here = units_in(0, at_a, matched + bare)
elsewhere = units_in(at_a, at_a + at_b, wrong)
rest = units - at_a - at_b
gone = units_in(at_a + at_b, units, not_in_stock, max(rest // max(not_in_stock, 1), 1))

rows = []
rows += [(GTINS[g % models], sn(g)) for g in here[:matched]]
rows += [(GTINS[g % models], sn(g)) for g in here[:repeats]]
rows += [("", sn(g)) for g in here[matched:]]
rows += [("", sn(j * models)) for j in range(ambiguous)]
rows += [(GTINS[g % models], sn(g)) for g in elsewhere]
rows += [(GTINS[g % models], sn(g)) for g in gone]
rows += [(GTINS[g % models], f"BX{g:08d}") for g in range(unexpected)]
assert len(rows) == scans
random.Random(1).shuffle(rows)
with open(out, "w") as f:
    f.write("gtin,serial\n")
    f.writelines(f"{g},{s}\n" for g, s in rows)

# Model 0's twin units in stock here that an ambiguous scan names count as neither found nor
# missing.
covered = sum(1 for j in range(ambiguous) if j * models < at_a)
with open(expected_path, "w") as f:
    json.dump(
        {
            "matched": matched + bare,
            "missing": at_a - matched - bare - covered,
            "wrong_location": wrong,
            "not_in_stock": not_in_stock,
            "unexpected": unexpected,
            "ambiguous": ambiguous,
        },
        f,
    )

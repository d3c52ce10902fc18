#!/usr/bin/env python3
"""Writes the scan file of bench/count (CSV gtin,serial, shuffled) and the category counts
the portal must find for it, as JSON.

    scans.py OUT.csv EXPECTED.json SCANS AT_A AT_B

Units (see load.sql): BC00000000… of the benchmark model; [0, AT_A) in stock at the counted
location, [AT_A, AT_A + AT_B) in stock elsewhere, the rest shipped or sold; the first 1,000
serials also exist on a second model.
"""
import json
import random
import sys

out, expected_path = sys.argv[1], sys.argv[2]
scans, at_a, at_b = (int(v) for v in sys.argv[3:6])
GTIN = "09506000888880"
AMBIGUOUS = 1000  # serials 0..999 exist on both benchmark models

matched = scans * 80 // 100          # with GTIN, in stock here
repeats = scans // 100               # the first of those scanned again
bare = scans // 100                  # in stock here, scanned without GTIN (unique serials)
wrong = scans * 10 // 100            # with GTIN, in stock at the other location
not_in_stock = scans * 5 // 100      # with GTIN, shipped or sold
unexpected = scans - matched - repeats - bare - AMBIGUOUS - wrong - not_in_stock
assert unexpected > 0
assert AMBIGUOUS + matched + bare <= at_a, "AT_A too small for the scan mix"
assert wrong <= at_b, "AT_B too small for the scan mix"


def sn(g):
    return f"BC{g:08d}"


rows = []
first = AMBIGUOUS
rows += [(GTIN, sn(g)) for g in range(first, first + matched)]
rows += [(GTIN, sn(g)) for g in range(first, first + repeats)]
rows += [("", sn(g)) for g in range(first + matched, first + matched + bare)]
rows += [("", sn(g)) for g in range(0, AMBIGUOUS)]
rows += [(GTIN, sn(g)) for g in range(at_a, at_a + wrong)]
rows += [(GTIN, sn(g)) for g in range(at_a + at_b, at_a + at_b + not_in_stock)]
rows += [(GTIN, f"BX{g:08d}") for g in range(unexpected)]
assert len(rows) == scans
random.Random(1).shuffle(rows)
with open(out, "w") as f:
    f.write("gtin,serial\n")
    f.writelines(f"{g},{s}\n" for g, s in rows)
with open(expected_path, "w") as f:
    json.dump(
        {
            "matched": matched + bare,
            "missing": at_a - matched - bare - AMBIGUOUS,
            "wrong_location": wrong,
            "not_in_stock": not_in_stock,
            "unexpected": unexpected,
            "ambiguous": AMBIGUOUS,
        },
        f,
    )

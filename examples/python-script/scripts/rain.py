"""Total rain per station from a readings CSV: a plain script, no SDK, no build step.

usage: rain.py CSV [--min-mm N]    (prints JSON; exits 3 if no station reaches N mm)
"""

import argparse
import csv
import json
import sys
from collections import defaultdict

ap = argparse.ArgumentParser()
ap.add_argument("csv")
ap.add_argument("--min-mm", type=float, default=0.0)
args = ap.parse_args()

rain = defaultdict(float)
with open(args.csv, newline="") as f:
    for row in csv.DictReader(f):
        rain[row["station"]] += float(row["rain_mm"] or 0)
wet = {s: round(mm, 2) for s, mm in sorted(rain.items()) if mm >= args.min_mm}
print(json.dumps({"stations": wet}))
if not wet:
    print(f"no station has {args.min_mm} mm of rain", file=sys.stderr)
    sys.exit(3)

"""extract: read the mounted readings CSV, keep the valid rows, write them as JSON Lines.

Params: `path` (default /data/readings.csv), `min_rows` (default 1: fewer valid rows fail the
task permanently). Output: /out/clean.jsonl (one reading per line) and /out/rejected.json (each
rejected row with its line number and reason). Values: `rows`, `rejected`.
"""

import csv
import json
from datetime import date

from sluice_sdk import Permanent, files, values


def parse_row(row: dict) -> dict:
    """A clean reading, or ValueError saying what is wrong with the row."""
    station = (row.get("station") or "").strip()
    if not station:
        raise ValueError("no station")
    day = date.fromisoformat(row["day"])  # ValueError for 2026-31-03
    temp = row.get("temp_c", "").strip()
    if not temp:
        raise ValueError("no temperature")
    return {"station": station, "day": day.isoformat(), "temp_c": float(temp), "rain_mm": float(row["rain_mm"] or 0)}


def run(ctx, params):
    path = files.path(params.get("path", "/data/readings.csv"))
    min_rows = params.get("min_rows", 1)
    clean, rejected = [], []
    with open(path, newline="", encoding="utf-8") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            try:
                clean.append(parse_row(row))
            except (ValueError, KeyError) as e:
                rejected.append({"line": line, "reason": str(e)})
    if len(clean) < min_rows:
        raise Permanent(f"{path.name}: {len(clean)} valid rows, fewer than min_rows={min_rows}")
    files.write_text("clean.jsonl", "".join(json.dumps(r) + "\n" for r in clean))
    files.write_json("rejected.json", rejected, indent=2)
    values.set("rows", len(clean))
    values.set("rejected", len(rejected))
    return {"rows": len(clean), "rejected": rejected}

"""report: a CSV table and a JSON summary from `stats`' per-station figures.

Reads /in/stats/stations.json and the value `extract.rows`. Param `unit`: `C` (default) or `F`.
Output: /out/report.csv (one row per station, warmest first) and the summary as the task output.
"""

import csv
import io

from sluice_sdk import Permanent, files, values


def convert(celsius: float, unit: str) -> float:
    return round(celsius * 9 / 5 + 32, 2) if unit == "F" else celsius


def run(ctx, params):
    unit = params.get("unit", "C").upper()
    if unit not in ("C", "F"):
        raise Permanent(f"param `unit`: `{unit}` is not C or F")
    stations = files.read_json("stats", "stations.json")
    rows = values.require("extract", "rows")
    ranked = sorted(stations.items(), key=lambda kv: kv[1]["mean_c"], reverse=True)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["station", "days", f"mean_{unit}", f"max_{unit}", "rain_mm"])
    for name, s in ranked:
        w.writerow([name, s["days"], convert(s["mean_c"], unit), convert(s["max_c"], unit), s["rain_mm"]])
    files.write_text("report.csv", out.getvalue())
    wettest = max(stations.items(), key=lambda kv: kv[1]["rain_mm"])
    return {
        "readings": rows,
        "warmest": ranked[0][0],
        "wettest": wettest[0],
        "unit": unit,
        "by_station": {name: convert(s["mean_c"], unit) for name, s in ranked},
    }

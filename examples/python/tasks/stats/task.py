"""stats: per-station statistics of the clean readings written by `extract`.

Reads /in/extract/clean.jsonl. Output: /out/stations.json — per station the number of days,
mean / median / standard deviation / min / max temperature and total rain. Value: `stations`.
"""

import json

from sluice_sdk import files, values


def summarise(temps: list, rain: list) -> dict:
    import statistics  # imported where it is used: the build preloads it all the same

    return {
        "days": len(temps),
        "mean_c": round(statistics.fmean(temps), 2),
        "median_c": statistics.median(temps),
        "stdev_c": round(statistics.stdev(temps), 2) if len(temps) > 1 else 0.0,
        "min_c": min(temps),
        "max_c": max(temps),
        "rain_mm": round(sum(rain), 2),
    }


def run(ctx, params):
    by_station = {}
    for line in files.read_text("extract", "clean.jsonl").splitlines():
        r = json.loads(line)
        temps, rain = by_station.setdefault(r["station"], ([], []))
        temps.append(r["temp_c"])
        rain.append(r["rain_mm"])
    stations = {name: summarise(t, r) for name, (t, r) in sorted(by_station.items())}
    files.write_json("stations.json", stations, indent=2)
    values.set("stations", len(stations))
    return stations

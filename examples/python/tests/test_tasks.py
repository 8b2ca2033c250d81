"""The example's tasks, natively under pytest with sluice_sdk.testing.MockHost (no wasm)."""

import importlib.util
import json
from pathlib import Path

import pytest

from sluice_sdk import Permanent
from sluice_sdk.testing import MockHost, run

HERE = Path(__file__).resolve().parent.parent


def load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", HERE / "tasks" / name / "task.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


extract, stats, report = load("extract"), load("stats"), load("report")


def test_extract_keeps_valid_rows_and_names_the_rejected_ones():
    with MockHost() as host:
        host.mount("/data", HERE / "data")
        out = run(extract)
        assert out["rows"] == 8
        assert out["rejected"] == [
            {"line": 6, "reason": "no temperature"},
            {"line": 10, "reason": out["rejected"][1]["reason"]},
        ]
        assert out["rejected"][1]["reason"].startswith("month must be in 1..12")  # wording varies by Python
        assert host.published_value("rows") == 8 and host.published_value("rejected") == 2
        first = json.loads(host.read_output("clean.jsonl").splitlines()[0])
        assert first == {"station": "ams", "day": "2026-11-01", "temp_c": 9.5, "rain_mm": 2.0}


def test_extract_fails_permanently_below_min_rows(tmp_path):
    (tmp_path / "r.csv").write_text("station,day,temp_c,rain_mm\nams,2026-11-01,9.5,0\n")
    with MockHost() as host:
        host.mount("/data", tmp_path).param("path", "/data/r.csv").param("min_rows", 2)
        with pytest.raises(Permanent, match="r.csv: 1 valid rows, fewer than min_rows=2"):
            run(extract)


def test_stats_per_station():
    lines = [
        {"station": "ams", "day": "d1", "temp_c": 8.0, "rain_mm": 1.0},
        {"station": "ams", "day": "d2", "temp_c": 10.0, "rain_mm": 2.5},
        {"station": "rtm", "day": "d1", "temp_c": 12.0, "rain_mm": 0.0},
    ]
    with MockHost() as host:
        host.input_file("extract", "clean.jsonl", "".join(json.dumps(r) + "\n" for r in lines))
        out = run(stats)
        assert out["ams"] == {
            "days": 2, "mean_c": 9.0, "median_c": 9.0, "stdev_c": 1.41, "min_c": 8.0, "max_c": 10.0, "rain_mm": 3.5,
        }
        assert out["rtm"]["stdev_c"] == 0.0
        assert json.loads(host.read_output("stations.json")) == out
        assert host.published_value("stations") == 2


def test_report_ranks_converts_and_needs_the_row_count():
    stations = {
        "ams": {"days": 2, "mean_c": 9.0, "max_c": 10.0, "rain_mm": 3.5},
        "rtm": {"days": 1, "mean_c": 12.0, "max_c": 12.0, "rain_mm": 0.0},
    }
    with MockHost() as host:
        host.input_file("stats", "stations.json", json.dumps(stations)).upstream_value("extract", "rows", 3)
        host.param("unit", "f")
        out = run(report)
        assert out == {"readings": 3, "warmest": "rtm", "wettest": "ams", "unit": "F",
                       "by_station": {"rtm": 53.6, "ams": 48.2}}
        assert host.read_output("report.csv") == "station,days,mean_F,max_F,rain_mm\nrtm,1,53.6,53.6,0.0\nams,2,48.2,50.0,3.5\n"
    with MockHost() as host:
        host.input_file("stats", "stations.json", json.dumps(stations))
        with pytest.raises(Permanent, match="missing upstream value `extract.rows`"):
            run(report)
        host.upstream_value("extract", "rows", 3).param("unit", "K")
        with pytest.raises(Permanent, match="`K` is not C or F"):
            run(report)

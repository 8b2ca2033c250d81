"""Params, values, checkpoints and secrets against the MockHost: the same rules as the Rust SDK."""

import pytest

from sluice_sdk import Params, Permanent, Transient, checkpoint, params, secrets, values
from sluice_sdk.testing import MockHost


@pytest.fixture
def host():
    with MockHost() as h:
        yield h


def test_params_parse_like_the_rust_sdk(host):
    host.param("n", " 42 ").param("ratio", "0.5").param("on", "Yes").param("tags", "a, b ,c")
    host.param("ids", "[1, 2]").param("opts", '{"k": 1}').param("empty", "")
    p = Params()
    assert p["n"] == " 42 "
    assert p.require("n", int) == 42
    assert p.require("ratio", float) == 0.5
    assert p.require("on", bool) is True
    assert p.require("tags", list) == ["a", "b", "c"]
    assert p.require("ids", list) == [1, 2]
    assert p.require("opts", dict) == {"k": 1}
    assert p.require("empty", list) == []
    assert p.get("missing", 7) == 7
    assert p.get("n", 0) == 42  # kind from the default
    assert "n" in p and "missing" not in p
    assert list(p) == ["n", "ratio", "on", "tags", "ids", "opts", "empty"]
    assert params.get("n") == " 42 " and params.get("nope") is None


def test_bad_or_missing_params_are_permanent_and_named(host):
    host.param("n", "x").param("flag", "maybe")
    p = Params()
    with pytest.raises(Permanent, match=r"^missing required param `count`$"):
        p.require("count", int)
    with pytest.raises(Permanent, match=r"^param `n`: `x` is not a valid int: "):
        p.require("n", int)
    with pytest.raises(Permanent, match=r"^param `n`: `x` is not a valid int"):
        p.get("n", 5)  # a typo never falls back to the default
    with pytest.raises(Permanent, match="use true/false, yes/no, on/off or 1/0"):
        p.require("flag", bool)
    with pytest.raises(Permanent):
        _ = p["absent"]


def test_values_roundtrip_and_refusals(host):
    host.upstream_value("extract", "rows", 3)
    assert values.get("extract", "rows") == 3
    assert values.get("extract", "nope") is None
    assert values.get("extract", "nope", 0) == 0
    with pytest.raises(Permanent, match=r"^missing upstream value `extract.valid`$"):
        values.require("extract", "valid")
    values.set("out", [1, 2])
    assert host.published_value("out") == [1, 2]
    with pytest.raises(Permanent, match=r"^value `bad` was refused: "):
        values.set_json("bad", "{")
    with pytest.raises(Permanent, match=r"^value `obj` could not be serialized as JSON: "):
        values.set("obj", object())
    with pytest.raises(Permanent, match="could not be serialized"):
        values.set("nan", float("nan"))  # NaN is not JSON


def test_checkpoints_survive_attempts(host):
    host.checkpoint("raw", b"xyz").checkpoint("progress", {"i": 4})
    assert checkpoint.load("raw") == b"xyz"
    assert checkpoint.load("none") is None
    assert checkpoint.load_json("progress") == {"i": 4}
    checkpoint.save_json("progress", {"i": 5})
    assert host.checkpoints["progress"] == b'{"i": 5}'
    with pytest.raises(Permanent, match="not valid JSON"):
        checkpoint.load_json("raw")


def test_checkpoint_host_failure_is_transient(host, monkeypatch):
    from sluice_sdk import _host

    def refuse(key, data):
        raise _host.HostError("store unavailable")

    monkeypatch.setattr(host, "checkpoint_save", refuse)
    with pytest.raises(Transient, match=r"^checkpoint `k` could not be saved: store unavailable$"):
        checkpoint.save("k", b"1")


def test_secrets_granted_and_denied(host):
    host.secret("db/password", "hunter2")
    assert secrets.reveal("db/password") == "hunter2"
    with pytest.raises(Permanent, match=r"^secret `db/other` was denied: "):
        secrets.reveal("db/other")


def test_no_host_is_a_clear_error():
    with pytest.raises(RuntimeError, match="install a sluice_sdk.testing.MockHost"):
        params.get("x")

"""Native tests of {{name}}: the task runs against an in-memory host, no wasm involved."""

import pytest

import task
from sluice_sdk import Context, Permanent
from sluice_sdk.testing import MockHost, run


def test_greets_and_publishes():
    with MockHost().param("name", "ada").param("times", 2) as host:
        out = run(task, Context(task_key="{{name}}"))
        assert out == {"greeting": "hello ada from {{name}} (attempt 0)", "times": 2}
        assert host.published_value("greetings") == 2
        assert host.read_output("greeting.txt").count("hello ada") == 2


def test_bad_times_is_permanent():
    with MockHost().param("times", "0"), pytest.raises(Permanent, match="at least 1"):
        run(task)

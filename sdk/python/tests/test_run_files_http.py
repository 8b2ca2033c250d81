"""Running a task through the component's glue: output, errors, files, HTTP."""

import json
import textwrap
import types

import pytest

from sluice_sdk import Context, Permanent, Transient, files, http
from sluice_sdk.testing import MockHost, run


def module(source: str) -> types.ModuleType:
    mod = types.ModuleType("task_under_test")
    exec(textwrap.dedent(source), mod.__dict__)
    return mod


def test_output_is_the_json_of_what_run_returns():
    task = module("""
        def run(ctx, params):
            return {"key": ctx.task_key, "attempt": ctx.attempt, "n": params.require("n", int) * 2}
    """)
    with MockHost().param("n", 21):
        assert run(task, Context(task_key="double", attempt=1)) == {"key": "double", "attempt": 1, "n": 42}


def test_run_may_take_only_ctx_and_return_a_list():
    with MockHost():
        assert run(lambda ctx: [ctx.job, 1]) == ["job", 1]


def test_unexpected_exception_is_a_permanent_error_with_type_message_and_line(capsys):
    task = module("""
        def run(ctx, params):
            rows = {}
            return rows["missing"]
    """)
    with MockHost(), pytest.raises(Permanent) as err:
        run(task)
    assert err.value.message.startswith("KeyError: 'missing' (at <string>:4 in run)")
    assert "Traceback" in capsys.readouterr().err  # the traceback is in the attempt's log


def test_task_errors_keep_their_kind():
    with MockHost():
        with pytest.raises(Transient, match="^try later$"):
            run(module("from sluice_sdk import Transient\ndef run(ctx, params): raise Transient('try later')"))
        with pytest.raises(Permanent, match="^bad input$"):
            run(module("from sluice_sdk import Permanent\ndef run(ctx, params): raise Permanent('bad input')"))


def test_output_that_is_not_json_is_permanent():
    with MockHost(), pytest.raises(Permanent, match="task output could not be serialized as JSON"):
        run(lambda ctx, p: {"s": {1, 2}})


def test_sys_exit_is_a_permanent_error_not_an_escape():
    with MockHost(), pytest.raises(Permanent, match="^SystemExit: 3"):
        run(module("import sys\ndef run(ctx, params): sys.exit(3)"))


def test_module_without_run_is_named():
    with MockHost(), pytest.raises(TypeError, match="task module `empty` has no `run"):
        run(types.ModuleType("empty"))


def test_files_in_and_out():
    with MockHost() as host:
        host.input_file("extract", "rows.csv", "a,b\n1,2\n").input_file("extract", "sub/x.json", '{"k": 1}')
        assert files.inputs("extract") == ["rows.csv", "sub/x.json"]
        assert files.read_text("extract", "rows.csv") == "a,b\n1,2\n"
        assert files.read_json("extract", "sub/x.json") == {"k": 1}
        assert files.inputs("nobody") == []
        with pytest.raises(Permanent, match=r"upstream file `extract/none.csv` not found"):
            files.read_text("extract", "none.csv")
        files.write_json("deep/dir/summary.json", {"rows": 1})
        files.write_text("a.txt", "hi")
        assert host.output_files() == ["a.txt", "deep/dir/summary.json"]
        assert json.loads(host.read_output("deep/dir/summary.json")) == {"rows": 1}
        with pytest.raises(Permanent, match="must be a relative path without `..`"):
            files.write_text("../escape.txt", "x")
        with pytest.raises(Permanent, match="must be a relative path"):
            files.output("/etc/passwd")


def test_ensure_dir_is_idempotent_and_files_path_follows_mounts(tmp_path):
    (tmp_path / "landing").mkdir()
    (tmp_path / "landing" / "orders.csv").write_text("id\n1\n")
    with MockHost() as host:
        host.mount("/data", tmp_path / "landing")
        assert files.path("/data/orders.csv").read_text() == "id\n1\n"
        out = files.ensure_dir(files.out_dir() / "x" / "y")
        assert files.ensure_dir(out) == out and out.is_dir()
        with pytest.raises(Exception, match="not under any mount"):
            files.path("/etc/passwd")


def test_http_canned_responses_and_denials():
    with MockHost() as host:
        host.respond("GET", "https://api.example.com/rates", body={"eur": 1.1})
        host.respond("POST", "https://api.example.com/busy", status=503)
        r = http.get("https://api.example.com/rates", headers={"accept": "application/json"})
        assert r.status == 200 and r.json() == {"eur": 1.1}
        assert host.requests[0].headers == [("accept", "application/json")]
        with pytest.raises(Transient, match="HTTP 503"):
            http.post("https://api.example.com/busy", "{}").raise_for_status()
        with pytest.raises(http.Denied, match="no canned response for GET https://elsewhere.example/"):
            http.get("https://elsewhere.example/")


def test_error_location_is_the_tasks_own_line_not_the_library_frame(tmp_path):
    task = module("""
        import json
        def run(ctx, params):
            return json.loads("{not json")
    """)
    with MockHost(), pytest.raises(Permanent) as err:
        run(task)
    assert err.value.message.startswith("json.decoder.JSONDecodeError: Expecting property name")
    assert err.value.message.endswith("(at <string>:4 in run)")

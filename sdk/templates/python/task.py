"""{{name}}: a sluice task in Python.

Test:  python -m pytest                       (natively, against sluice_sdk.testing.MockHost)
Build: python -m sluice_sdk.build . -o {{module}}.wasm
Run:   sluice task run {{module}}.wasm --param name=you --param times=2

`run` returns the task's output (anything JSON-serialisable). Raise `Transient` for failures a
retry may fix and `Permanent` for the rest; any other exception fails the attempt permanently
with its type and message. Pure-Python dependencies go in requirements.txt.
"""

from sluice_sdk import Context, Params, Permanent, files, values


def run(ctx: Context, params: Params) -> dict:
    name = params.get("name", "world")
    times = params.get("times", 1)  # an int, because the default is one
    if times < 1:
        raise Permanent(f"param `times` must be at least 1, not {times}")
    lines = [f"hello {name} from {ctx.task_key} (attempt {ctx.attempt})"] * times
    files.write_text("greeting.txt", "\n".join(lines) + "\n")  # /out/greeting.txt, for dependents
    values.set("greetings", times)
    return {"greeting": lines[0], "times": times}

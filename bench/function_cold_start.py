"""Cold start of a function worker, with and without the sandbox (docs/rotation.md quotes it).

A cold invocation is the worker's start (bwrap's namespaces and mounts, the interpreter, the
handler's import) plus one call; the warm one that follows is the call alone. Run:
``.venv/bin/python bench/function_cold_start.py [RUNS]`` (needs bwrap; takes a few seconds).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from strongroom.rotation import sandbox
from strongroom.rotation.runtime import FunctionRuntime, FunctionSpec

SOURCE = "import boto3\n\ndef handler(event, context):\n    return event\n"  # AWS's templates import boto3


def measure(runtime: FunctionRuntime, code_dir: str, runs: int) -> tuple[list[float], list[float]]:
    cold, warm = [], []
    for n in range(runs):
        spec = FunctionSpec(
            key=f"arn:aws:lambda:us-east-1:1:function:f#{n}",
            arn="arn:aws:lambda:us-east-1:1:function:f",
            name="f",
            handler="lambda_function.handler",
            code_dir=code_dir,
        )
        started = time.perf_counter()
        assert runtime.invoke(spec, {"n": n}).ok
        cold.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        assert runtime.invoke(spec, {"n": n}).ok
        warm.append((time.perf_counter() - started) * 1000)
        runtime.forget(spec.arn)
    return cold, warm


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory() as code:
        Path(code, "lambda_function.py").write_text(SOURCE)
        for label, runtime in (
            ("unsandboxed", FunctionRuntime(lambda spec: {}, unsafe=True)),
            ("sandboxed", FunctionRuntime(lambda spec: {}, sandbox=sandbox.find())),
        ):
            cold, warm = measure(runtime, code, runs)
            runtime.close()
            print(
                f"{label:12} cold start median {statistics.median(cold):6.1f} ms (min {min(cold):.1f}, "
                f"max {max(cold):.1f}); warm call median {statistics.median(warm):.2f} ms; {runs} runs"
            )


if __name__ == "__main__":
    main()

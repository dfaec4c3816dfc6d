"""Mutation testing of the trust-critical modules (``make mutate``; docs/testing.md).

Each module in ``TARGETS`` is mutated by cosmic-ray, one small change at a time (``<`` for
``<=``, ``and`` for ``or``, ``True`` for ``False``, a ``not`` added, a number changed, a loop run
zero times, an ``except`` that no longer catches, a decorator dropped...), and the module's test
subset runs against each mutant. A mutant the tests fail on is *killed*; one they pass is a
*survivor*: a bug no test would notice. The score is killed / (killed + survived).

cosmic-ray writes each mutant into the source file itself, so the servers, workers and sandboxes
the tests start in subprocesses run the mutant too (``PYTHONDONTWRITEBYTECODE`` is set by
cosmic-ray for every test run, so no stale bytecode hides it). It does so in a scratch copy of
``src/`` and ``tests/`` (``.mutate/tree``, first on ``PYTHONPATH`` for the tests and every process
they start), never in the working tree: you can keep working, and an interrupted run leaves no
mutant behind.

    .venv/bin/python scripts/mutate.py                 # every module, one after another
    .venv/bin/python scripts/mutate.py sigv4 authorizer  # some of them (names below)
    .venv/bin/python scripts/mutate.py --list          # the modules and their test subsets
    .venv/bin/python scripts/mutate.py --survivors sigv4  # the last run's survivors, as diffs

Sessions are kept in ``.mutate/`` (one SQLite file per module), so an interrupted run resumes
where it stopped; ``--fresh`` starts over. Exit status 1 when a module scores under ``--min``
(90 by default).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
STATE = ROOT / ".mutate"
TREE = STATE / "tree"
PYTEST = f"{sys.executable} -m pytest -x -q -p no:cacheprovider"


@dataclass(frozen=True)
class Target:
    module: str  # path under src/strongroom/
    tests: tuple[str, ...]  # pytest arguments: the subset that guards the module
    timeout: float = 120.0  # seconds for one mutant's test run (a hang counts as killed)


# The test subset each module needs: in-process unit and storage tests where they suffice (fast),
# API and e2e tests (a real server in a subprocess) where the module only acts there.
_AUTH = ("tests/unit/auth",)
_AUTHZ = ("tests/unit/auth/test_authorizer.py", "tests/unit/policy/test_identity_keys.py")
# The policy subsets: per module, the in-process tests that reach it, the file that fails fastest on
# its mutants first (pytest runs with -x); property tests come last within each file. The policy
# simulator comparison needs node and is slow; the identity-key tests reach evaluation only.
_P = "tests/unit/policy/"
_POLICY_EVAL = (f"{_P}test_policy_eval.py", f"{_P}test_identity_keys.py")
_POLICY_PARSE = (f"{_P}test_policy_parse.py", f"{_P}test_policy_eval.py")
_CRYPTO = ("tests/unit/test_crypto.py", "tests/unit/test_key_providers.py")
# The access-key store: its own tests in process (SQLite, the fake clock); nothing else in
# tests/unit/auth imports it. The migration test's PostgreSQL case does not reach it either.
_KEYS = ("tests/unit/auth/test_keys.py", "tests/unit/auth/test_key_privilege.py", "-k", "not postgresql")
_STORE = ("tests/storage/test_conformance.py", "-k", "not postgresql")
# The store's rows: the conformance suite, and the operations that read and write them in process.
_STORE_ROWS = ("tests/storage/test_conformance.py", "tests/unit/services", "-k", "not postgresql")
# Secrets Manager's labels, tokens, retention and deletion: in process, on SQLite.
_SM = ("tests/unit/services", *_STORE)
# The operations themselves: their in-process tests first (most mutants fail there, and -x stops).
_SM_SERVICE = ("tests/unit/services/test_operations.py", *_SM)
TARGETS: dict[str, Target] = {
    "sigv4": Target("auth/sigv4.py", ("tests/unit/auth/test_sigv4.py",)),
    "authorizer": Target("auth/authorizer.py", _AUTHZ),
    "keys": Target("auth/keys.py", _KEYS),
    "principal": Target("auth/principal.py", _AUTH),
    "policy.evaluate": Target("policy/evaluate.py", _POLICY_EVAL),
    "policy.match": Target("policy/match.py", _POLICY_EVAL),
    "policy.wildcard": Target("policy/wildcard.py", (f"{_P}test_wildcard.py", f"{_P}test_policy_eval.py")),
    "policy.parse": Target("policy/parse.py", _POLICY_PARSE),
    "policy.document": Target("policy/document.py", _POLICY_PARSE),
    "cipher": Target("crypto/cipher.py", _CRYPTO),
    "master": Target("crypto/master.py", _CRYPTO),
    # The keyring in process (tests/e2e/test_keyring.py, the same life end to end, takes 88 s a run).
    "ring": Target("crypto/ring.py", ("tests/unit/test_keyring_in_process.py",)),
    "labels": Target("domain/labels.py", _SM),
    "sm.service": Target("services/secretsmanager/service.py", _SM_SERVICE),
    "sm.lifecycle": Target("services/secretsmanager/lifecycle.py", _SM),
    "sm.values": Target("services/secretsmanager/values.py", _SM),
    "engine": Target("rotation/engine.py", ("tests/unit/rotation/test_engine.py",)),
    "store.database": Target("store/database.py", _STORE),
    "store.secrets": Target("store/secrets.py", _STORE_ROWS),
    # A command run in the sandbox and its refusals, in process (one bwrap start each); the hostile
    # function of tests/e2e/test_sandbox.py attacks it through servers, too slow per mutant.
    "sandbox": Target("rotation/sandbox.py", ("tests/unit/rotation/test_sandbox_setup.py",)),
}

# Operators kept: the ones that make a plausible bug. Dropped: the arithmetic swaps that make
# nonsense (``+`` for ``<<``, ``**``...), comparison swaps to an unrelated operator (``==`` for
# ``>``), ``|`` for ``&`` (in these modules it only ever joins types in annotations, which
# ``from __future__ import annotations`` never evaluates: every such mutant is equivalent), and the
# variable replacers (random, not repeatable).
_KEEP_BINARY = {"Add_Sub", "Sub_Add", "Mul_Div", "Div_Mul", "FloorDiv_Div"}
_KEEP_COMPARE = {
    "Eq_NotEq",
    "NotEq_Eq",
    "Lt_LtE",
    "LtE_Lt",
    "Gt_GtE",
    "GtE_Gt",
    "Lt_GtE",
    "Gt_LtE",
    "Is_IsNot",
    "IsNot_Is",
}


def _kept(operator: str) -> bool:
    op = operator.removeprefix("core/")
    family, _, change = op.partition("_")
    if family == "ReplaceBinaryOperator":
        return change in _KEEP_BINARY
    if family == "ReplaceComparisonOperator":
        return change in _KEEP_COMPARE
    if family == "ReplaceUnaryOperator":
        return change == "USub_UAdd"
    return op not in ("VariableReplacer", "VariableInserter")


def _excluded_operators() -> list[str]:
    out = subprocess.run([str(BIN / "cosmic-ray"), "operators"], capture_output=True, text=True, check=True).stdout
    return [f"^{name}$" for name in out.split() if not _kept(name)]


def _config(name: str, target: Target) -> Path:
    STATE.mkdir(exist_ok=True)
    path = STATE / f"{name}.toml"
    lines = [
        "[cosmic-ray]",
        f"module-path = {json.dumps('src/strongroom/' + target.module)}",
        f"timeout = {target.timeout}",
        "excluded-modules = []",
        f"test-command = {json.dumps(PYTEST + ' ' + shlex.join(target.tests))}",
        "",
        "[cosmic-ray.distributor]",
        'name = "local"',
        "",
        "[cosmic-ray.filters.operators-filter]",
        f"exclude-operators = {json.dumps(_excluded_operators())}",
        "",
    ]
    path.write_text("\n".join(lines))
    return path


def _results(session: Path) -> list[dict[str, object]]:
    out = subprocess.run(
        [str(BIN / "cosmic-ray"), "dump", str(session)], capture_output=True, text=True, check=True
    ).stdout
    rows = []
    for line in out.splitlines():
        item, result = json.loads(line)
        rows.append({"item": item, "result": result})
    return rows


def score(session: Path) -> tuple[int, int, int, list[dict[str, object]]]:
    """(killed, survived, not run, survivors) of a session."""
    killed = survived = pending = 0
    survivors = []
    for row in _results(session):
        result = row["result"]
        if not isinstance(result, dict) or result.get("worker_outcome") == "skipped":
            if result is None:
                pending += 1
            continue
        if result.get("worker_outcome") != "normal" or result.get("test_outcome") == "incompetent":
            pending += 1
        elif result.get("test_outcome") == "survived":
            survived += 1
            survivors.append(row)
        else:
            killed += 1
    return killed, survived, pending, survivors


class Unmutated(Exception):
    """A module's test subset fails on the code as it is: no mutant of it can be judged."""


def copy_tree(tree: Path) -> dict[str, str]:
    """The scratch copy the mutants are written into: this working tree's src/, tests/ and
    pyproject.toml (pytest's settings); the JavaScript dependencies are linked, not copied.
    Answers the environment its tests run in (the copy first on ``PYTHONPATH``)."""
    tree.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "rsync",
            "-a",
            "--checksum",  # a file an interrupted run left mutated has the size of the original
            "--delete",
            "--exclude",
            "node_modules",
            "--exclude",
            "__pycache__",
            "src",
            "tests",
            "pyproject.toml",
            f"{tree}/",
        ],
        cwd=ROOT,
        check=True,
    )
    for modules in ROOT.glob("tests/*/node_modules"):  # the JavaScript dependencies, shared (read only)
        link = tree / modules.relative_to(ROOT)
        if not link.exists():
            link.symlink_to(modules)
    path = os.pathsep.join(filter(None, [str(tree / "src"), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def run(name: str, target: Target, fresh: bool, tree: Path, env: dict[str, str]) -> tuple[int, int, int, float]:
    session = STATE / f"{name}.sqlite"
    config = _config(name, target)
    started = time.monotonic()
    if fresh or not session.exists():
        session.unlink(missing_ok=True)
        baseline = subprocess.run(
            [*shlex.split(PYTEST), *target.tests], cwd=tree, env=env, capture_output=True, text=True
        )
        if baseline.returncode != 0:
            raise Unmutated(f"{name}: its tests fail without any mutation; fix them first:\n{baseline.stdout[-3000:]}")
        for step in (
            [str(BIN / "cosmic-ray"), "init", str(config), str(session)],
            [str(BIN / "cr-filter-operators"), str(session), str(config)],
            [str(BIN / "cr-filter-pragma"), str(session)],
        ):
            subprocess.run(step, cwd=tree, env=env, check=True)
    subprocess.run([str(BIN / "cosmic-ray"), "exec", str(config), str(session)], cwd=tree, env=env, check=True)
    killed, survived, pending, _ = score(session)
    return killed, survived, pending, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", help="names from --list (default: all)")
    parser.add_argument("--list", action="store_true", help="print the modules and their test subsets")
    parser.add_argument("--fresh", action="store_true", help="discard earlier sessions of these modules")
    parser.add_argument("--survivors", action="store_true", help="print the survivors of the last run, as diffs")
    parser.add_argument("--min", type=float, default=90.0, help="lowest acceptable score, percent (default 90)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="modules mutated at once, each in a scratch copy of its own (default: one per CPU)",
    )
    args = parser.parse_args()
    if args.list:
        for name, target in TARGETS.items():
            print(f"{name:16} src/strongroom/{target.module:40} {' '.join(target.tests)}")
        return 0
    unknown = [m for m in args.modules if m not in TARGETS]
    if unknown:
        print(f"unknown module(s): {', '.join(unknown)}; the names are: {', '.join(TARGETS)}", file=sys.stderr)
        return 2
    names = args.modules or list(TARGETS)
    if args.survivors:
        for name in names:
            session = STATE / f"{name}.sqlite"
            if not session.exists():
                continue
            for row in score(session)[3]:
                print(f"--- {name}: {row['item']['mutations'][0]['operator_name']}")  # type: ignore[index]
                print(row["result"]["diff"])  # type: ignore[index]
        return 0
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    jobs = max(1, min(args.jobs, len(names)))
    # One scratch copy per job: a mutant written into a copy must not be seen by another module's tests.
    slots: queue.SimpleQueue[tuple[Path, dict[str, str]]] = queue.SimpleQueue()
    for index in range(jobs):
        tree = TREE if index == 0 else STATE / f"tree-{index}"
        slots.put((tree, copy_tree(tree)))

    def one(name: str) -> tuple[str, float]:
        tree, env = slots.get()
        try:
            killed, survived, pending, seconds = run(name, TARGETS[name], args.fresh, tree, env)
        finally:
            slots.put((tree, env))
        total = killed + survived
        pct = 100.0 * killed / total if total else 100.0
        line = f"{name:16} {pct:5.1f}%  killed {killed:4}  survived {survived:3}  not run {pending:3}  {seconds:6.0f} s"
        print(line, flush=True)
        return line, pct

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        try:
            results = list(pool.map(one, names))
        except Unmutated as exc:
            pool.shutdown(wait=True, cancel_futures=True)  # the modules not started are not started
            print(exc, file=sys.stderr)
            return 2
    failed = any(pct < args.min for _, pct in results)
    lines = [line for line, _ in results]
    lines.append(f"{len(names)} modules in {time.monotonic() - started:.0f} s, {jobs} at a time")
    print("\n".join(["", "module           score   (killed / killed + survived)", *lines]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

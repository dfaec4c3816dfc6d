"""Rule 3 of :mod:`strongroom.testing.history`: linearizability of one secret's operations under
a model of AWS's staging-label rules. The search is Wing and Gong's, with Lowe's memoisation (as
in Knossos and Porcupine); indeterminate operations may take effect at any point after their
invocation, or never. ``max_steps`` bounds it: a history the search cannot decide within it is
reported as such, never passed.
"""

from __future__ import annotations

from collections.abc import Callable

from strongroom.testing.history.record import CURRENT, PREVIOUS, WRITES, Op

__all__: list[str] = []

# ----------------------------------------------------------------------------- linearizability

_State = tuple[int, int, int]  # (versions as a bit set over token numbers, current, previous); -1: none


def _step_fn(
    op: Op, number: Callable[[str | None], int], value_of: dict[str, str]
) -> Callable[[_State], _State | None] | None:
    """The model's transition for ``op``: the state after it, or None when ``op``'s answer is not
    what the model answers in that state. None (no function) for operations that tell nothing."""
    if op.outcome == "info" and op.f not in WRITES + ("UpdateSecretVersionStage",):
        return None  # a read without an answer says nothing
    if op.outcome == "fail" and op.error == "Unavailable":
        return None
    r = op.response or {}
    ok = op.outcome == "ok"

    def labels(state: _State, v: int) -> list[str]:
        return ([CURRENT] if state[1] == v else []) + ([PREVIOUS] if state[2] == v else [])

    if op.f in WRITES:
        t = number(op.args["ClientRequestToken"])
        answered = r.get("VersionStages") if ok and op.f == "PutSecretValue" else None

        def write(state: _State) -> _State | None:
            versions, current, previous = state
            if versions >> t & 1:  # a retry of the same token and value: nothing changes
                if answered is not None and sorted(answered) != labels(state, t):
                    return None
                return state
            if op.f == "CreateSecret" and versions:
                return None
            if answered is not None and answered != [CURRENT]:
                return None
            return (versions | 1 << t, t, current if current >= 0 else previous)

        return write

    if op.f == "UpdateSecretVersionStage":
        move_to, remove_from = number(op.args.get("MoveToVersionId")), number(op.args.get("RemoveFromVersionId"))
        refused = op.outcome == "fail"

        def stage(state: _State) -> _State | None:
            versions, current, _previous = state
            can = current == remove_from and move_to >= 0 and bool(versions >> move_to & 1)
            if refused:
                return state if not can else None
            if not can:
                return None
            return state if current == move_to else (versions, move_to, current)

        return stage

    if op.f == "GetSecretValue":
        asked = op.args.get("VersionId")
        a = number(asked) if asked else None
        if not ok:  # ResourceNotFoundException: no such version (or no current one)
            return lambda s: s if (s[1] < 0 if a is None else not (a >= 0 and s[0] >> a & 1)) else None
        vid = r.get("VersionId")
        v = number(vid)
        stages = sorted(r.get("VersionStages", []))
        if vid not in value_of or value_of[vid] != r.get("SecretString"):
            return lambda s: None

        def get(state: _State) -> _State | None:
            if v < 0 or not state[0] >> v & 1:
                return None
            if a is None and state[1] != v:
                return None
            return state if labels(state, v) == stages else None

        return get

    if op.f == "DescribeSecret":
        if not ok:
            return lambda s: None
        seen = {number(vid): sorted(st) for vid, st in r.get("VersionIdsToStages", {}).items()}

        def describe(state: _State) -> _State | None:
            model: dict[int, list[str]] = {}
            for stage_name, v in ((CURRENT, state[1]), (PREVIOUS, state[2])):
                if v >= 0:
                    model.setdefault(v, []).append(stage_name)
            return state if model == seen else None

        return describe

    if op.f == "ListSecretVersionIds":
        if not ok:
            return lambda s: None
        listed = {number(v["VersionId"]): sorted(v.get("VersionStages", [])) for v in r.get("Versions", [])}
        complete = not r.get("NextToken") and not op.args.get("NextToken")
        mask = 0
        for v in listed:
            mask |= (1 << v) if v >= 0 else 0
        unknown = any(v < 0 for v in listed)

        def list_versions(state: _State) -> _State | None:
            if unknown or (complete and mask != state[0]) or (mask & ~state[0]):
                return None
            return state if all(labels(state, v) == st for v, st in listed.items()) else None

        return list_versions

    return lambda s: None  # an operation the model does not know: explained by no order


class _Entry:
    __slots__ = ("call", "id", "match", "next", "op", "prev", "time")

    def __init__(self, op: Op | None, call: bool, t: float, id_: int) -> None:
        self.op, self.call, self.time, self.id = op, call, t, id_
        self.match: _Entry | None = None
        self.prev: _Entry | None = None
        self.next: _Entry | None = None


def _linearizable(secret: str, ops: list[Op], written: dict[str, tuple[str, Op]], max_steps: int) -> list[str]:
    numbers: dict[str, int] = {}

    def number(token: str | None) -> int:
        if token is None:
            return -2
        if token not in written:
            return -3  # a version nobody wrote: no state holds it
        return numbers.setdefault(token, len(numbers))

    value_of = {token: value for token, (value, _) in written.items()}
    steps: list[tuple[Op, Callable[[_State], _State | None]]] = []
    for op in ops:
        fn = _step_fn(op, number, value_of)
        if fn is not None:
            steps.append((op, fn))
    if not steps:
        return []

    # Calls and returns in time order (an indeterminate operation returns "never"); a call before
    # a return at the same instant, so that only a real gap orders two operations.
    events: list[tuple[float, int, _Entry]] = []
    fns: list[Callable[[_State], _State | None]] = []
    for i, (op, fn) in enumerate(steps):
        fns.append(fn)
        call = _Entry(op, True, op.invoke, i)
        ret = _Entry(op, False, float("inf") if op.outcome == "info" else (op.complete or op.invoke), i)
        call.match = ret
        events += [(call.time, 0, call), (ret.time, 1, ret)]
    events.sort(key=lambda e: (e[0], e[1]))
    head = _Entry(None, False, float("-inf"), -1)
    prev = head
    for _, _, event in events:
        prev.next, event.prev = event, prev
        prev = event

    def lift(e: _Entry) -> None:
        for x in (e, e.match):
            assert x is not None and x.prev is not None
            x.prev.next = x.next
            if x.next is not None:
                x.next.prev = x.prev

    def unlift(e: _Entry) -> None:
        for x in (e.match, e):
            assert x is not None and x.prev is not None
            x.prev.next = x
            if x.next is not None:
                x.next.prev = x

    state: _State = (0, -1, -1)
    linearized = 0
    cache: set[tuple[int, _State]] = set()
    stack: list[tuple[_Entry, _State]] = []
    best: tuple[int, list[Op], _State, Op | None] = (-1, [], state, None)
    entry: _Entry | None = head.next
    count = 0
    for _ in range(max_steps):
        if entry is None or (not entry.call and entry.time == float("inf")):
            return []  # only indeterminate operations are left: they need not have happened
        if entry.call:
            new = fns[entry.id](state)
            if new is not None:
                key = (linearized | 1 << entry.id, new)
                if key not in cache:
                    cache.add(key)
                    stack.append((entry, state))
                    state, linearized = new, key[0]
                    count += 1
                    lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            if count > best[0]:
                best = (count, [e.op for e, _ in stack[-5:] if e.op is not None], state, entry.op)
            if not stack:
                break
            popped, state = stack.pop()
            linearized &= ~(1 << popped.id)
            count -= 1
            unlift(popped)
            entry = popped.next
    else:
        return [f"{secret}: linearizability search gave up after {max_steps} steps (inconclusive)"]

    names = {n: t for t, n in numbers.items()}
    _, last, at, culprit = best

    def name(n: int) -> str:
        return names.get(n, "none")

    lines = [
        f"{secret}: no order of the {len(steps)} operations explains the answers (not linearizable).",
        f"  At best {best[0]} operations fit; then {culprit.describe() if culprit else '?'} could not,",
        f"  with AWSCURRENT on {name(at[1])} and AWSPREVIOUS on {name(at[2])}, "
        f"{bin(at[0]).count('1')} versions, after:",
    ]
    lines += [f"    {op.describe()}" for op in last]
    return ["\n".join(lines)]

"""``*`` and ``?`` in policies, matched without backtracking (Action, NotAction, Resource,
NotResource, StringLike/StringNotLike and each component of ArnLike/ArnNotLike).

``like(pattern, value, ignore_case=False)`` answers exactly what the regular expression strongroom
used before answered (the pattern with ``*`` as ``.*``, ``?`` as ``.`` and every other character
escaped, matched with ``fullmatch`` under ``re.DOTALL``, plus ``re.IGNORECASE`` for actions); only
the cost changed. That regex backtracked: ``*a*a*a*a*a*b`` against 150 ``a`` took seconds, six
stars against 500 characters would take days, and a resource policy is written by whoever may
call PutResourcePolicy on his own secret.

Semantics:

* ``*`` matches any run of characters, none included, ``:`` and ``/`` included (ArnLike splits the
  ARN into components *before* matching, so there a star stays within its component);
* ``?`` matches exactly one character (one code point), any character including newline;
* every other character matches only itself; there are no character classes and no escapes
  (``[``, ``\\`` and ``$`` are literal; policy variables are refused when a policy is parsed);
* the whole value must match: the empty pattern matches only the empty value; ``*`` (or ``**``)
  matches everything, the empty value included; ``?`` at either end needs one character there;
* case-sensitive by default (resources, ARNs, StringLike). ``ignore_case=True`` (actions) folds
  each character as ``re.IGNORECASE`` does: its simple lower-case mapping, then the extra
  equivalences the ``re`` module applies (``i``/``ı``/``İ``, ``s``/``ſ``, ``k``/``K``, ``µ``/``μ``,
  ...; taken from ``re._casefix`` so the two cannot drift apart). The fold maps one character to
  one character, so lengths and ``?`` are unaffected.

Algorithm: the pattern is split on ``*`` into fixed-length segments. The first segment must match
at the start, the last at the end, and each middle one is searched left to right from where the
previous one ended, taking the leftmost occurrence. Because every segment has a fixed length,
the leftmost occurrence also ends earliest, so it never needs to be revisited: no backtracking.
A segment without ``?`` is found with ``str.find`` (CPython's search switches to the two-way
algorithm when a search goes badly, so it is linear); a segment with ``?`` is a fixed-length
regular expression (literals and ``.``) with nothing to backtrack into, searched at most once
per start position. Cost for a value of n characters and a pattern of m: O(n + m) when no
segment has ``?``; otherwise a ``?``-segment of length L costs at most (n - L + 1)·L character
comparisons in C, so O(n·m) in all, never more (and L > n fails at once on the length check).
Compiled patterns are cached (``matcher``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from re._casefix import _EXTRA_CASES  # the table re.IGNORECASE itself uses (Python >= 3.11)

__all__ = ["fold", "like", "matcher"]


def _fold_char(code: int) -> str:
    """The representative of a character's class under ``re.IGNORECASE``: the smallest code point
    among its simple lower-case form and the ``re`` module's extra equivalents of that form."""
    char = chr(code)
    lower = char.lower()
    if len(lower) != 1:  # only U+0130 (İ) lower-cases to two characters; its simple mapping is "i"
        lower = "i" if code == 0x130 else char
    low = ord(lower)
    return chr(min((low, *_EXTRA_CASES.get(low, ()))))


class _FoldTable(dict[int, str]):
    """``str.translate`` table computing folds on demand (only characters seen are kept)."""

    def __missing__(self, code: int) -> str:
        folded = _fold_char(code)
        if len(self) < 65536:
            self[code] = folded
        return folded


_FOLD = _FoldTable()


def fold(text: str) -> str:
    """``text`` with every character folded as ``re.IGNORECASE`` compares it (same length)."""
    if text.isascii():
        return text.lower()  # exact for ASCII: every ASCII letter is its class's representative
    return text.translate(_FOLD)


class _Segment:
    """A run of the pattern between stars: fixed length, ``?`` matching any one character."""

    __slots__ = ("text", "size", "regex")

    def __init__(self, text: str) -> None:
        self.text = text
        self.size = len(text)
        # Literals and "." only: no quantifier, no alternation, so nothing to backtrack into.
        self.regex = re.compile("".join("." if c == "?" else re.escape(c) for c in text), re.DOTALL) \
            if "?" in text else None

    def at(self, value: str, pos: int) -> bool:
        if self.regex is None:
            return value.startswith(self.text, pos)
        return self.regex.match(value, pos) is not None

    def find(self, value: str, start: int, end: int) -> int:
        """Leftmost position in ``[start, end - size]`` where the segment matches, or -1."""
        if self.regex is None:
            return value.find(self.text, start, end)
        m = self.regex.search(value, start, end)
        return -1 if m is None else m.start()


def _compile(pattern: str) -> Callable[[str], bool]:
    if "*" not in pattern:
        if "?" not in pattern:
            return pattern.__eq__
        only = _Segment(pattern)
        return lambda value: len(value) == only.size and only.at(value, 0)
    parts = pattern.split("*")
    first, last = parts[0], parts[-1]
    middle = tuple(_Segment(p) for p in parts[1:-1] if p)
    if "?" not in first and "?" not in last and not middle:
        if not first and not last:
            return lambda value: True  # "*", "**", ...
        shortest = len(first) + len(last)
        return lambda value: len(value) >= shortest and value.startswith(first) and value.endswith(last)
    head, tail = _Segment(first), _Segment(last)
    shortest = head.size + tail.size + sum(s.size for s in middle)

    def match(value: str) -> bool:
        end = len(value) - tail.size
        if len(value) < shortest or not head.at(value, 0) or not tail.at(value, end):
            return False
        pos = head.size
        for segment in middle:
            found = segment.find(value, pos, end)
            if found < 0:
                return False
            pos = found + segment.size
        return True

    return match


@lru_cache(maxsize=8192)
def _cached(pattern: str, ignore_case: bool) -> Callable[[str], bool]:
    return _compile(fold(pattern) if ignore_case else pattern)


def matcher(pattern: str, ignore_case: bool = False) -> Callable[[str], bool]:
    """A compiled, cached ``like(pattern, ·, ignore_case)``."""
    test = _cached(pattern, ignore_case)
    if not ignore_case:
        return test
    return lambda value: test(fold(value))


def like(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """Does ``value`` match ``pattern`` as a whole? (see the module docstring for the rules)"""
    test = _cached(pattern, ignore_case)
    return test(fold(value) if ignore_case else value)

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
A segment without ``?`` is found with ``str.find`` when short (at most 32 characters) and
otherwise as a literal regular expression, which the ``re`` module searches with a KMP overlap
table in O(n + L) (``str.find`` can take O(n·L) on values under 2,500 characters); a middle
segment with ``?`` is searched at
every start position at once, with one shift and one AND of an n-bit integer per literal
character of the segment (``_Segment.find``); the first and last segments are only compared at
their fixed position. Cost for a value of n characters and a pattern of m: O(n + m) when the
pattern has no ``?`` (per segment, so a policy of many patterns costs at most n per pattern);
otherwise O(n + m·n/w) machine-word operations (w = 30-bit digits of
CPython's integers), with O(m) steps of Python. Never exponential, never quadratic in Python.
Measured worst cases (a 20,480-character resource policy against a 2,048-character value) are in
``bench/policy_worst.py``. Compiled patterns are cached (``matcher``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from re._casefix import _EXTRA_CASES  # the table re.IGNORECASE itself uses (Python >= 3.11)
from typing import Any

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
        if len(self) < 65536:  # pragma: no mutate (a bound on memory: no answer depends on it)
            self[code] = folded
        return folded


_FOLD = _FoldTable()


def fold(text: str) -> str:
    """``text`` with every character folded as ``re.IGNORECASE`` compares it (same length)."""
    if text.isascii():
        return text.lower()  # exact for ASCII: every ASCII letter is its class's representative
    return text.translate(_FOLD)


@lru_cache(maxsize=256)  # pragma: no mutate (a cache: no answer depends on it)
def _positions(value: str, char: str) -> int:
    """Bit i set where ``value[i] == char`` (cached: one request matches one value many times)."""
    bits = "1".join("0" * len(run) for run in value.split(char))  # one C-level split, one join
    return int(bits[::-1], 2)


# Up to this length str.find is fastest; beyond, its worst case (CPython uses a simple search below
# 2,500 characters) is O(n·L), while a literal regular expression is searched with the KMP
# overlap table of the re module, O(n + L).
_FIND_MAX = 32  # pragma: no mutate (which search finds the leftmost match: cost only)


def _literal_search(text: str) -> Callable[[str, int, int], Any] | None:
    return re.compile(re.escape(text)).search if len(text) > _FIND_MAX else None  # pragma: no mutate (cost only)


class _Segment:
    """A run of the pattern between stars: fixed length, ``?`` matching any one character."""

    __slots__ = ("fixed", "kmp", "regex", "size", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.size = len(text)
        self.kmp = _literal_search(text) if "?" not in text else None
        # Literals and "." only: no quantifier, no alternation, so nothing to backtrack into.
        self.regex = (
            re.compile("".join("." if c == "?" else re.escape(c) for c in text), re.DOTALL) if "?" in text else None
        )
        self.fixed = tuple((offset, c) for offset, c in enumerate(text) if c != "?")

    def at(self, value: str, pos: int) -> bool:
        if self.regex is None:
            return value.startswith(self.text, pos)
        return self.regex.match(value, pos) is not None

    def find(self, value: str, start: int, end: int) -> int:
        """Leftmost position in ``[start, end - size]`` where the segment matches, or -1.

        With ``?``, every start position is tested at once: bit p of ``hits`` stays set while
        ``value[p + offset] == c`` for each literal ``c`` of the segment. That is one shift and one
        AND of an n-bit integer per literal (in C, n/30 machine words each), never a character-
        by-character retry per position."""
        if self.kmp is not None:
            found: re.Match[str] | None = self.kmp(value, start, end)
            if found is None:
                return -1  # pragma: no mutate (-2 is the same: the callers test < 0)
            return found.start()
        if self.regex is None:
            return value.find(self.text, start, end)
        last = end - self.size
        if last < start:
            return -1  # pragma: no mutate (-2 is the same: the callers test < 0)
        hits = ((1 << (last + 1)) - 1) >> start << start  # candidate positions start..last
        for offset, char in self.fixed:
            hits &= _positions(value, char) >> offset
            if not hits:
                return -1  # pragma: no mutate (-2 is the same: the callers test < 0)
        return (hits & -hits).bit_length() - 1


def _compile(pattern: str) -> Callable[[str], bool]:
    if "*" not in pattern:
        if "?" not in pattern:
            return pattern.__eq__
        only = _Segment(pattern)
        # pragma below: at(value, -1) is the same (re's match() reads a negative pos as 0)
        return lambda value: len(value) == only.size and only.at(value, 0)  # pragma: no mutate
    parts = pattern.split("*")
    first, last = parts[0], parts[-1]
    shortest = sum(len(p) for p in parts)
    if "?" not in pattern:
        if not pattern.strip("*"):
            return lambda value: True  # "*", "**", ...
        literals = tuple((p, len(p), _literal_search(p)) for p in parts[1:-1] if p)
        skip = len(first)

        def match_literals(value: str) -> bool:
            if len(value) < shortest or not value.startswith(first) or not value.endswith(last):
                return False
            end, pos, find = len(value) - len(last), skip, value.find
            for literal, size, kmp in literals:  # leftmost occurrence of each, left to right
                if kmp is None:
                    pos = find(literal, pos, end)
                    if pos < 0:
                        return False
                else:
                    found = kmp(value, pos, end)
                    if found is None:
                        return False
                    pos = found.start()
                pos += size
            return True

        return match_literals
    head, tail = _Segment(first), _Segment(last)
    middle = tuple(_Segment(p) for p in parts[1:-1] if p)

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


@lru_cache(maxsize=8192)  # pragma: no mutate (a cache bound: no answer depends on it)
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

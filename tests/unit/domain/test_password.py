from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.domain.password import PUNCTUATION, PasswordError, PasswordRules, generate_password


def test_default_has_every_type() -> None:
    pw = generate_password(PasswordRules())
    assert len(pw) == 32
    for cls in (string.ascii_lowercase, string.ascii_uppercase, string.digits, PUNCTUATION):
        assert set(pw) & set(cls)


def test_punctuation_is_awss_set() -> None:
    assert string.punctuation == PUNCTUATION


@given(
    length=st.integers(4, 200),
    exclude=st.text(alphabet=string.printable, max_size=20),
    no_digits=st.booleans(),
    no_punct=st.booleans(),
    space=st.booleans(),
)
def test_rules_hold(length: int, exclude: str, no_digits: bool, no_punct: bool, space: bool) -> None:
    rules = PasswordRules(
        length=length,
        exclude_characters=exclude,
        exclude_numbers=no_digits,
        exclude_punctuation=no_punct,
        include_space=space,
    )
    try:
        pw = generate_password(rules)
    except PasswordError:
        return
    assert len(pw) == length
    assert not set(pw) & set(exclude)
    if no_digits:
        assert not set(pw) & set(string.digits)
    if no_punct:
        assert not set(pw) & set(PUNCTUATION)
    if space and " " not in exclude:
        assert " " in pw


def test_everything_excluded() -> None:
    with pytest.raises(PasswordError):
        generate_password(
            PasswordRules(
                exclude_lowercase=True, exclude_uppercase=True, exclude_numbers=True, exclude_punctuation=True
            )
        )


def test_too_short_for_every_type() -> None:
    with pytest.raises(PasswordError):
        generate_password(PasswordRules(length=3))
    assert len(generate_password(PasswordRules(length=3, require_each_included_type=False))) == 3

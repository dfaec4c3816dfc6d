from __future__ import annotations

import re

import pytest

from strongroom.domain.names import is_valid_name, new_arn, parse_secret_id


@pytest.mark.parametrize("name", ["a", "prod/db/password", "x+y=z.w@v!u-t_s", "A" * 512])
def test_valid_names(name: str) -> None:
    assert is_valid_name(name)


@pytest.mark.parametrize("name", ["", "with space", "tab\tname", "semi;colon", "ünïcode", "quote'"])
def test_invalid_names(name: str) -> None:
    assert not is_valid_name(name)


def test_arn_has_a_random_six_character_suffix() -> None:
    arns = {new_arn("aws", "us-east-1", "123456789012", "db") for _ in range(50)}
    assert len(arns) == 50
    for arn in arns:
        assert re.fullmatch(r"arn:aws:secretsmanager:us-east-1:123456789012:secret:db-[A-Za-z0-9]{6}", arn)


def test_plain_name() -> None:
    ref = parse_secret_id("prod/db")
    assert (ref.name, ref.arn) == ("prod/db", None)


def test_full_arn() -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbC123"
    ref = parse_secret_id(arn)
    assert (ref.name, ref.arn, ref.region, ref.account_id) == (None, arn, "us-east-1", "123456789012")


def test_partial_arn_is_a_name() -> None:
    ref = parse_secret_id("arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db")
    assert (ref.name, ref.arn, ref.region) == ("prod/db", None, "eu-west-1")


def test_partial_arn_ending_like_a_suffix_is_taken_for_a_full_arn() -> None:
    ref = parse_secret_id("arn:aws:secretsmanager:us-east-1:123456789012:secret:my-secret")
    assert ref.name is None
    assert ref.arn is not None


def test_other_services_arn_finds_nothing() -> None:
    ref = parse_secret_id("arn:aws:s3:::bucket")
    assert ref.name is None

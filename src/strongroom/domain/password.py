"""GetRandomPassword: AWS's character sets and rules, drawn from the operating system's CSPRNG."""

from __future__ import annotations

import secrets as _random
import string
from dataclasses import dataclass

__all__ = ["PUNCTUATION", "PasswordError", "PasswordRules", "generate_password"]

# AWS's punctuation set: ! " # $ % & ' ( ) * + , - . / : ; < = > ? @ [ \ ] ^ _ ` { | } ~
PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


class PasswordError(ValueError):
    """The rules cannot be satisfied; the message is AWS's text."""


@dataclass(frozen=True, slots=True)
class PasswordRules:
    length: int = 32
    exclude_characters: str = ""
    exclude_numbers: bool = False
    exclude_punctuation: bool = False
    exclude_uppercase: bool = False
    exclude_lowercase: bool = False
    include_space: bool = False
    require_each_included_type: bool = True


def _classes(rules: PasswordRules) -> list[str]:
    excluded = set(rules.exclude_characters)
    wanted = []
    if not rules.exclude_lowercase:
        wanted.append(string.ascii_lowercase)
    if not rules.exclude_uppercase:
        wanted.append(string.ascii_uppercase)
    if not rules.exclude_numbers:
        wanted.append(string.digits)
    if not rules.exclude_punctuation:
        wanted.append(PUNCTUATION)
    if rules.include_space:
        wanted.append(" ")
    return ["".join(c for c in cls if c not in excluded) for cls in wanted]


def generate_password(rules: PasswordRules) -> str:
    classes = _classes(rules)
    alphabet = "".join(classes)
    if not alphabet:
        raise PasswordError("Password requirements can't be satisfied: every character type is excluded.")
    required = [cls for cls in classes if cls] if rules.require_each_included_type else []
    if rules.require_each_included_type and any(not cls for cls in classes):
        raise PasswordError(
            "Password requirements can't be satisfied: a required character type has all of its characters excluded."
        )
    if len(required) > rules.length:
        raise PasswordError(
            "Password requirements can't be satisfied: the password length is shorter than the "
            "number of character types it must include."
        )
    chars = [_random.choice(cls) for cls in required]
    chars += [_random.choice(alphabet) for _ in range(rules.length - len(chars))]
    # Shuffle with the CSPRNG so the required characters are not always in front.
    for i in range(len(chars) - 1, 0, -1):
        j = _random.randbelow(i + 1)
        chars[i], chars[j] = chars[j], chars[i]
    return "".join(chars)

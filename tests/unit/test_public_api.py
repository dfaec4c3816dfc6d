"""Each package's public surface, pinned (as httpx's tests/test_exported_members.py pins its own).

A package's ``__init__.py`` only re-exports: what it offers is its ``__all__``, listed here name by
name. Adding, removing or renaming an export, or adding a package, fails this test until the list
below says so: a change to what other code may import is then a visible, reviewed change. A
package without ``__all__`` exports nothing (its modules are imported by their own names).
"""

from __future__ import annotations
import __future__

import importlib
import inspect
import pkgutil

import pytest

import strongroom

EXPORTS: dict[str, tuple[str, ...]] = {
    "strongroom": (),
    "strongroom.audit": (
        "REDACTED_MEMBERS",
        "AuditTrail",
        "api_call_record",
        "is_read_only",
        "new_event_id",
        "new_id",
        "service_event_record",
    ),
    "strongroom.auth": (),
    "strongroom.cli": (),
    "strongroom.crypto": (
        "DecryptionError",
        "Keyring",
        "MasterKey",
        "UnknownMember",
        "fingerprint_of",
        "harden_process",
        "member_of",
    ),
    "strongroom.domain": (),
    "strongroom.policy": (
        "Condition",
        "Decision",
        "Policy",
        "PolicyError",
        "Request",
        "Statement",
        "access_denied_message",
        "evaluate",
        "load_json",
        "parse_policy",
    ),
    "strongroom.protocol": (
        "JSONProtocol",
        "QueryProtocol",
        "Response",
        "RestJSONProtocol",
        "WireProtocol",
        "WireRequest",
    ),
    "strongroom.rotation": (),
    "strongroom.rotation.builtin": (),
    "strongroom.server": (),
    "strongroom.server.console": ("Console",),
    "strongroom.services": (),
    "strongroom.services.cloudtrail": ("OPERATIONS", "CloudTrail"),
    "strongroom.services.iam": ("IAM", "OPERATIONS"),
    "strongroom.services.lambda_": ("BUILTINS", "OPERATIONS", "Lambda"),
    "strongroom.services.secretsmanager": ("SecretsManager",),
    "strongroom.services.sts": ("OPERATIONS", "STS"),
    "strongroom.store": ("Conflict", "Database", "Tx", "Unstorable", "WriteHook", "open_database", "write_hook"),
    "strongroom.testing": ("ServerProcess", "free_port", "postgres_schema", "wait_for"),
    "strongroom.testing.fuzz": (
        "KINDS",
        "SERVED",
        "TARGET_PREFIX",
        "Canary",
        "Case",
        "Context",
        "Outcome",
        "Report",
        "error_of",
        "execute",
        "generate",
        "healthy",
        "judge",
        "run_campaign",
        "sign",
    ),
    "strongroom.testing.history": (
        "ROTATION_ENV",
        "ROTATION_FUNCTION",
        "History",
        "Op",
        "Workload",
        "check",
        "client_for",
        "read_final_state",
        "rotation_value",
    ),
}


def _packages() -> set[str]:
    found = {"strongroom"}
    for info in pkgutil.walk_packages(strongroom.__path__, "strongroom."):
        if info.ispkg:
            found.add(info.name)
    return found


def test_every_package_is_pinned() -> None:
    assert _packages() == set(EXPORTS)


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_package_exports_exactly_its_list(name: str) -> None:
    package = importlib.import_module(name)
    exported = getattr(package, "__all__", ())
    assert sorted(exported) == sorted(EXPORTS[name])
    assert len(set(exported)) == len(exported), "a name listed twice in __all__"
    for member in exported:
        assert hasattr(package, member), f"{name}.__all__ names {member}, which it does not have"


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_nothing_public_outside_all(name: str) -> None:
    """Every public name a package holds is exported (its submodules apart): a helper imported into
    an ``__init__.py`` for its own use would otherwise look like part of the package's surface."""
    package = importlib.import_module(name)
    public = {
        member
        for member, value in vars(package).items()
        if not member.startswith("_") and not inspect.ismodule(value) and not isinstance(value, __future__._Feature)
    }
    assert public <= set(getattr(package, "__all__", ()))

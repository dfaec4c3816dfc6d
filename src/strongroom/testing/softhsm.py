"""A SoftHSM2 token of a test's own, for the PKCS#11 master key provider (docs/key-providers.md).

:class:`SoftHSM` writes a SoftHSM2 configuration naming a token directory under ``root`` and
initialises tokens there with ``softhsm2-util``. Everything that should see those tokens needs
``SOFTHSM2_CONF`` from :attr:`SoftHSM.env`: subprocesses get it in their environment; this process
only if it is set before the module is first loaded (SoftHSM2 reads it once, at load).

SoftHSM2 is a Debian package the project's set-up installs (``scripts/system-packages``); when it
is missing, :meth:`SoftHSM.require` fails the test with the command to run, never skips it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["MODULE", "SoftHSM"]

MODULE = "/usr/lib/softhsm/libsofthsm2.so"


class SoftHSM:
    """Tokens in a directory of their own. ``pin`` is every token's user PIN, ``so_pin`` the
    security officer's."""

    def __init__(self, root: Path, pin: str = "1234", so_pin: str = "5678") -> None:
        self.require()
        self.root, self.pin, self.so_pin = root, pin, so_pin
        (root / "tokens").mkdir(parents=True, exist_ok=True)
        self.conf = root / "softhsm2.conf"
        self.conf.write_text(
            f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
        )

    @staticmethod
    def require() -> None:
        if not (os.path.exists(MODULE) and shutil.which("softhsm2-util")):
            import pytest

            pytest.fail(
                "SoftHSM2 is not installed: run scripts/ensure-system-packages (make setup does)", pytrace=False
            )

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to see these tokens (SOFTHSM2_CONF) and log in (the PIN)."""
        return {"SOFTHSM2_CONF": str(self.conf), "STRONGROOM_PKCS11_PIN": self.pin}

    def init_token(self, label: str) -> None:
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", self.pin, "--so-pin", self.so_pin],
            check=True,
            capture_output=True,
            env={**os.environ, "SOFTHSM2_CONF": str(self.conf)},
        )

    @staticmethod
    def options(token: str, *key_labels: str) -> list[str]:
        """The command-line options naming keys on ``token``."""
        args = ["--pkcs11-module", MODULE, "--pkcs11-token-label", token]
        for label in key_labels:
            args += ["--pkcs11-key-label", label]
        return args

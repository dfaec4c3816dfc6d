"""deploy/strongroom.service: systemd accepts it (`systemd-analyze verify`), its hardening scores
what docs/deploy.md says (`systemd-analyze security --offline`), and the command it runs starts a
server from deploy/strongroom.toml."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "strongroom.service"
SETTINGS = ROOT / "deploy" / "strongroom.toml"
ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
STRONGROOM = Path(sys.executable).parent / "strongroom"

pytestmark = pytest.mark.skipif(not Path(ANALYZE).exists(), reason="systemd-analyze is not installed")


def local_copy(tmp_path: Path, text: str | None = None) -> Path:
    """The unit with ExecStart pointing at this checkout's strongroom (verify checks that the
    program exists)."""
    unit = tmp_path / "strongroom.service"
    unit.write_text((text or UNIT.read_text()).replace("/usr/local/bin/strongroom", str(STRONGROOM)))
    return unit


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ANALYZE, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60, cwd=unit.parent
    )


def test_systemd_accepts_the_unit(tmp_path):
    result = verify(local_copy(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""  # not a single ignored or misspelt line


def test_verify_does_catch_a_broken_unit(tmp_path):
    """So that the check above can fail: systemd ignores what it cannot parse, with a warning."""
    broken = UNIT.read_text().replace("ProtectSystem=strict", "ProtectSystem=sideways")
    result = verify(local_copy(tmp_path, broken))
    assert "Failed to parse protect system value, ignoring: sideways" in result.stderr


def test_the_hardening(tmp_path):
    text = UNIT.read_text()
    for line in (
        "User=strongroom",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/strongroom",
        "StateDirectory=strongroom",
        "StateDirectoryMode=0700",
        "NoNewPrivileges=true",
        "PrivateTmp=true",
        "CapabilityBoundingSet=",
        "KillSignal=SIGTERM",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ):
        assert f"\n{line}\n" in text, line
    # systemd's own exposure score (0 best, 10 worst), offline: 3.8 for this unit, "OK".
    result = subprocess.run(
        [ANALYZE, "security", "--offline=true", "--threshold=40", str(local_copy(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert "Overall exposure level for strongroom.service: 3.8 OK" in result.stdout


def test_the_shipped_settings_file_is_read(tmp_path):
    """The ExecStart line's --config, with the example settings."""
    result = subprocess.run(
        [str(STRONGROOM), "serve", "--config", str(SETTINGS), "--print-config"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert f'data-dir = "/var/lib/strongroom"  # file {SETTINGS}' in result.stdout
    assert f'log-format = "json"  # file {SETTINGS}' in result.stdout

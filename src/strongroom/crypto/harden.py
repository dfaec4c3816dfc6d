"""Process hardening for a process that holds keys: no core dumps, no debugger attaching (Linux).

Best effort: where a limit or ``prctl`` is unavailable (another OS, a sandbox refusing it) the
process runs on unhardened rather than refusing to start.
"""

from __future__ import annotations

import ctypes
import resource

__all__ = ["harden_process"]


def harden_process() -> None:
    """Keep secrets out of core dumps and away from other processes' debuggers (Linux)."""
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError):
        pass
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_DUMPABLE = 4
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass

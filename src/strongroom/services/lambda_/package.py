"""A function's code: a zip archive, checked whole at upload and unpacked at invocation.

Every member is read and its CRC checked at upload (a damaged member would otherwise only fail at
Invoke); absolute paths and ``..`` are refused both at upload and when unpacking, so an archive
never writes outside its directory. Refusals are Lambda's InvalidParameterValueException.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

from strongroom.errors import AWSError

__all__ = ["check_zip", "extract"]

_MAX_UNZIPPED = 262_144_000  # Lambda's limit on a zip package's unzipped size


def check_zip(code: bytes) -> None:
    """Refuse at upload what could not be unpacked at invocation: reading the central directory is
    not enough (a damaged member only failed at Invoke, with a 500 on every call after), so every
    member is read and its CRC checked, once its declared sizes are known to be within limits."""
    try:
        with zipfile.ZipFile(io.BytesIO(code)) as z:
            infos = z.infolist()
            for info in infos:
                _safe_member(info.filename)
            if sum(info.file_size for info in infos) >= _MAX_UNZIPPED:
                raise AWSError(
                    "InvalidParameterValueException", f"Unzipped size must be smaller than {_MAX_UNZIPPED} bytes"
                )
            damaged = z.testzip()
    except AWSError:
        raise
    except Exception:  # noqa: BLE001 - a damaged archive raises BadZipFile, zlib.error, EOFError, NotImplementedError...
        damaged = ""
    if damaged is not None:
        raise AWSError(
            "InvalidParameterValueException",
            "Could not unzip uploaded file. Please check your file, then try to upload again.",
        )


def _safe_member(name: str) -> None:
    parts = Path(name).parts
    if name.startswith("/") or ".." in parts:
        raise AWSError("InvalidParameterValueException", f"The zip file holds an unsafe path: {name}")


def extract(code: bytes, target: Path) -> None:
    with zipfile.ZipFile(io.BytesIO(code)) as z:
        for info in z.infolist():
            _safe_member(info.filename)
        z.extractall(target)
    os.chmod(target, 0o755)

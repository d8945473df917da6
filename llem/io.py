"""Atomic file writes: a killed process never leaves a file that looks complete."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_bytes_atomic(path: str | Path, data: bytes, *, durable: bool = True) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``.

    The rename alone makes the write atomic for readers and against a killed process;
    ``durable=False`` skips the fsync, for files that are derived and rewritten whenever
    they differ (a power loss can then leave an empty file, which the next writer replaces).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; results are shared files, so honour the umask like open() does.
        os.fchmod(fd, 0o666 & ~_current_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str, *, durable: bool = True) -> None:
    """Atomic UTF-8 text write."""
    write_bytes_atomic(path, text.encode("utf-8"), durable=durable)


def write_json_atomic(path: str | Path, document: Any, *, durable: bool = True) -> None:
    """Atomic JSON write (indented, UTF-8, trailing newline)."""
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    write_text_atomic(path, text, durable=durable)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

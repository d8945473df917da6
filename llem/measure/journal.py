"""An optional append-only record of what llem step processes did, for audits and tests.

With ``LLEM_EVENT_LOG=<file>`` set, every step process appends one JSON line per event: the
step started or ended, a lock was waited for, acquired or released, the process stopped
because the process that started it is gone. Each line is one ``write`` to a file opened with
``O_APPEND``, so lines of concurrent processes never interleave and the file's order is the
order in which the events happened. A process logs ``released`` before it releases a lock and
``acquired`` after it got one, so the file never shows two holders at once unless there were.

Without the variable nothing is written. A record that cannot be written is dropped: the
journal never stops a measurement.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Mapping
from typing import Any

EVENT_LOG_ENV = "LLEM_EVENT_LOG"


def record(event: str, environ: Mapping[str, str] | None = None, **fields: Any) -> None:
    """Append one event (with time, pid and host) to ``$LLEM_EVENT_LOG`` when it is set."""
    env = os.environ if environ is None else environ
    path = env.get(EVENT_LOG_ENV)
    if not path:
        return
    line = {"t": time.time(), "pid": os.getpid(), "host": socket.gethostname(),
            "event": event, **fields}
    data = (json.dumps(line, default=str) + "\n").encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return
    try:
        os.write(fd, data)
    except OSError:
        pass
    finally:
        os.close(fd)

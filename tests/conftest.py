"""Shared test set-up.

torch's intra-op threads thrash on small shared machines, so every test runs single-threaded.
The host-wide measurement locks of a test run live in a folder of their own, so tests
neither wait for nor block real measurements on the same host.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

_LOCK_DIR = tempfile.mkdtemp(prefix="llem-test-locks-")
os.environ["LLEM_LOCK_DIR"] = _LOCK_DIR
atexit.register(shutil.rmtree, _LOCK_DIR, ignore_errors=True)

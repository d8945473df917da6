"""Result files, CLI processes and read-backs for the DuckLake fault tests.

The tests run the llem CLI in real processes (the way a lab's many writers meet one lake),
racers released together by a start file so that they reach the store at once, and read the
lake back through llem's own read-only connection.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from llem.store.connection import open_store_read_only
from tests import documents as docs
from tests.store_documents import renamed

#: A racer: for each round, waits until the round's start file exists, runs the llem CLI
#: with that round's arguments and writes its exit status and output to a file.
_RACER = (
    "import contextlib, io, json, os, sys, time\n"
    "from llem.cli import main\n"
    "folder, name, rounds = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])\n"
    "for k, argv in enumerate(rounds):\n"
    "    while not os.path.exists(os.path.join(folder, f'go{k}')):\n"
    "        time.sleep(0.002)\n"
    "    out, err = io.StringIO(), io.StringIO()\n"
    "    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):\n"
    "        code = main(argv)\n"
    "    done = os.path.join(folder, f'done{k}-{name}')\n"
    "    with open(done + '.tmp', 'w') as f:\n"
    "        json.dump([code, out.getvalue(), err.getvalue()], f)\n"
    "    os.replace(done + '.tmp', done)\n"
)

def result_files(folder: Path, count: int, prefix: str, energy_j: float = 150.0) -> list[Path]:
    """``count`` valid v3 result files, each under its own experiment id ``<prefix>/e<i>``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        doc = renamed(docs.v3_aggregated((energy_j, energy_j + 10.0)), f"{prefix}/e{i:04d}")
        paths.append(docs.write(folder, f"{prefix.replace('/', '_')}_{i:04d}.json", doc))
    return paths


def cli_env() -> dict[str, str]:
    """The environment of a CLI child: this checkout's llem first on the import path."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root if not path else f"{root}{os.pathsep}{path}",
            "OMP_NUM_THREADS": "1"}


def llem(*args: str, timeout_sec: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``python -m llem ARGS`` to its end."""
    return subprocess.run([sys.executable, "-m", "llem", *args], capture_output=True,
                          text=True, env=cli_env(), timeout=timeout_sec, check=False)


def race(folder: Path, rounds: list[list[list[str]]], timeout_sec: float = 180
         ) -> list[list[subprocess.CompletedProcess[str]]]:
    """Race llem CLI calls: ``rounds[k][i]`` is racer ``i``'s argv in round ``k``.

    One process per racer runs all its rounds, so that a round's calls start within
    milliseconds of each other (a start file releases them) rather than a process start
    apart; the next round starts when every call of this one has ended.
    """
    folder.mkdir(parents=True, exist_ok=True)
    racers = len(rounds[0])
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(folder), str(i),
                               json.dumps([argvs[i] for argvs in rounds])],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=cli_env()) for i in range(racers)]
    results = []
    try:
        deadline = time.monotonic() + timeout_sec
        for k, argvs in enumerate(rounds):
            (folder / f"go{k}").touch()
            done = [folder / f"done{k}-{i}" for i in range(racers)]
            while not all(path.exists() for path in done):
                crashed = [proc for proc, path in zip(procs, done, strict=True)
                           if proc.poll() is not None and not path.exists()]
                assert not crashed, crashed[0].communicate()[0]
                assert time.monotonic() < deadline, f"round {k} did not end in time"
                time.sleep(0.01)
            results.append([subprocess.CompletedProcess(argv, *json.loads(path.read_text()))
                            for argv, path in zip(argvs, done, strict=True)])
        for proc in procs:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


def lake_rows(store: str, sql: str, as_of: str | None = None) -> list[tuple]:
    """Rows of ``sql`` on the store, opened read-only (at ``as_of``) as llem's readers do."""
    conn = open_store_read_only(store, as_of=as_of)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()

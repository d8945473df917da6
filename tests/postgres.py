"""A throwaway PostgreSQL server for the tests and benchmarks of the DuckLake store.

A DuckLake store keeps its catalog in a PostgreSQL database, so its tests need a real server.
`PostgresServer` starts one in a fresh temporary folder (trust authentication, user ``llem``,
listening only on 127.0.0.1 at a port the OS picked, durability off for speed) and removes the
folder when stopped. Each test gets a database of its own from `create_database`, so one
server serves a whole test session. PostgreSQL refuses to run as root: under root the server
runs as ``nobody``. Standard library only, so benchmarks/ can use it without pytest.

Example:
    with PostgresServer() as server:
        url = server.lake_url(server.create_database(), "/tmp/lake-data")
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

USER = "llem"
HOST = "127.0.0.1"
MISSING = "PostgreSQL server binaries not found (Debian: apt-get install postgresql)"
# Debian installs the server binaries per major version, off PATH.
DEBIAN_GLOB = "/usr/lib/postgresql/*/bin"
_SERVER_BINARIES = ("initdb", "pg_ctl", "postgres", "psql", "createdb", "dropdb")
_UNPRIVILEGED = "nobody"
_PORT_TRIES = 5
_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")
# Durability is worthless for a server that lives as long as a test session.
_SPEED = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=200")


class PostgresError(RuntimeError):
    """The test server could not be started, stopped or queried."""


def _has_server(bindir: Path) -> bool:
    return all((bindir / name).is_file() for name in _SERVER_BINARIES)


def _version_key(bindir: Path) -> tuple[int, ...]:
    """`/usr/lib/postgresql/15/bin` -> (15,); 9.6 -> (9, 6), so 15 sorts after 9.6."""
    return tuple(int(part) for part in bindir.parent.name.split(".") if part.isdigit())


def find_bindir() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres, or None when there is none.

    `pg_config --bindir` wins when it names a folder with the server in it (a client-only
    pg_config may not); else the newest Debian install.
    """
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        done = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                              timeout=30, check=False)
        bindir = Path(done.stdout.strip())
        if done.returncode == 0 and done.stdout.strip() and _has_server(bindir):
            return bindir
    found = [path for path in Path("/").glob(DEBIAN_GLOB.lstrip("/")) if _has_server(path)]
    return max(found, key=_version_key) if found else None


def _run_as() -> list[str]:
    """The prefix that runs a server command unprivileged: PostgreSQL will not run as root."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", _UNPRIVILEGED, "--"]


def available() -> str | None:
    """None when a PostgreSQL server can be started here, else the reason it cannot."""
    if find_bindir() is None:
        return MISSING
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(_UNPRIVILEGED)
        except KeyError:
            return f"running as root and there is no user {_UNPRIVILEGED!r} to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and runuser (util-linux) is not installed"
    return None


def _free_port() -> int:
    """A port nobody listens on right now; another process may still take it first."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _client_env() -> dict[str, str]:
    """The environment without PG* variables, so a user's PGHOST or PGDATABASE cannot steer."""
    return {key: value for key, value in os.environ.items() if not key.startswith("PG")}


class PostgresServer:
    """One running PostgreSQL server in a temporary folder of its own; `stop()` removes both.

    Attributes:
        folder: the temporary folder (data directory, unix socket, log).
        port: the TCP port on 127.0.0.1.
        pid: the postmaster's process id.
    """

    def __init__(self) -> None:
        bindir = find_bindir()
        if bindir is None:
            raise PostgresError(MISSING)
        self.bindir = bindir
        self.folder = Path(tempfile.mkdtemp(prefix="llem-postgres-"))
        self.port = 0
        self.pid = 0
        self._running = False
        try:
            self._init()
            self._start()
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def log_path(self) -> Path:
        return self.folder / "server.log"

    def _server_command(self, argv: list[str], what: str) -> None:
        """Run initdb or pg_ctl as the server's user, in its folder; raise with its output."""
        done = subprocess.run([*_run_as(), *argv], capture_output=True, text=True,
                              cwd=self.folder, timeout=120, check=False)
        if done.returncode != 0:
            log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
            raise PostgresError(f"{what} failed ({done.returncode}): "
                                f"{(done.stdout + done.stderr).strip()[-2000:]}\n{log[-2000:]}")

    def _init(self) -> None:
        if os.geteuid() == 0:
            account = pwd.getpwnam(_UNPRIVILEGED)
            os.chown(self.folder, account.pw_uid, account.pw_gid)
        self._server_command([str(self.bindir / "initdb"), "-D", str(self.data_dir), "-A", "trust",
                              "-U", USER, "-E", "UTF8", "--no-locale", "--no-sync"], "initdb")

    def _start(self) -> None:
        """Start on a free port; another process may grab it in between, so retry on a clash."""
        for _ in range(_PORT_TRIES):
            self.port = _free_port()
            self.log_path.unlink(missing_ok=True)
            options = ["-c", f"listen_addresses={HOST}", "-p", str(self.port),
                       "-k", str(self.folder)]
            for setting in _SPEED:
                options += ["-c", setting]
            try:
                # pg_ctl hands -o to a shell, hence the quoting.
                self._server_command([str(self.bindir / "pg_ctl"), "start", "-w", "-t", "60",
                                      "-D", str(self.data_dir), "-l", str(self.log_path),
                                      "-o", shlex.join(options)], "pg_ctl start")
            except PostgresError as error:
                if "already in use" in str(error):
                    continue
                raise
            self._running = True
            self.pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
            return
        raise PostgresError(f"pg_ctl start: no free port after {_PORT_TRIES} tries")

    def stop(self) -> None:
        """Stop the server at once (nothing in it is worth keeping) and remove its folder."""
        try:
            if self._running:
                self._server_command([str(self.bindir / "pg_ctl"), "stop", "-w", "-m",
                                      "immediate", "-D", str(self.data_dir)], "pg_ctl stop")
                self._running = False
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    def _client(self, tool: str, *args: str) -> str:
        """Run a client tool (psql, createdb, dropdb) against this server over TCP."""
        argv = [str(self.bindir / tool), "-h", HOST, "-p", str(self.port), "-U", USER, "-w", *args]
        done = subprocess.run(argv, capture_output=True, text=True, env=_client_env(),
                              timeout=60, check=False)
        if done.returncode != 0:
            raise PostgresError(f"{tool} {shlex.join(args)} failed ({done.returncode}): "
                                f"{done.stderr.strip()}")
        return done.stdout

    def create_database(self, prefix: str = "llem") -> str:
        """Make a new, empty database with a unique name and return the name."""
        if not _NAME.match(prefix):
            raise ValueError(f"database prefix {prefix!r}: use lower-case letters, digits and _")
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self._client("createdb", name)
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, closing any connections still open to it."""
        self._client("dropdb", "--if-exists", "--force", name)

    def psql(self, dbname: str, sql: str) -> str:
        """Run SQL in one database and return psql's unaligned, tuples-only output."""
        return self._client("psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
                            "-d", dbname, "-c", sql)

    def lake_url(self, dbname: str, data_path: str | os.PathLike[str]) -> str:
        """The store address of a DuckLake with its catalog in `dbname` and data in data_path."""
        return (f"ducklake+postgres://{USER}@{HOST}:{self.port}/{dbname}"
                f"?data_path={quote(os.fspath(data_path), safe='/')}")

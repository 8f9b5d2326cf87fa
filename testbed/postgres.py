"""A real PostgreSQL (Debian's `postgresql` package) on a free loopback port, for tests.

`initdb` makes a throwaway cluster in a temp folder, with `trust` authentication
for its one superuser (`rollbot` by default) and a first database; `postgres`
serves it on 127.0.0.1 only (no Unix socket) with fsync off, and `stop()` deletes
it all. The binaries are Debian's versioned ones (`/usr/lib/postgresql/N/bin`,
the newest first), else whatever `initdb` is on PATH.

PostgreSQL refuses to run as root; as root (CI's machine) the cluster belongs to
the `postgres` system user the Debian package creates, and its processes run as
that user.

    with PostgresServer() as pg:
        pg.dsn                      # postgresql://rollbot@127.0.0.1:PORT/rollbot
        pg.create_database("app")   # postgresql://rollbot@127.0.0.1:PORT/app
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Self

from testbed.controlplane import free_port
from testbed.service import LocalService

#: Who runs PostgreSQL when the tests run as root (the Debian package's user).
SYSTEM_USER = "postgres"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresError(RuntimeError):
    """PostgreSQL could not be found or started; the message says why."""


def postgres_bin_dir() -> Path:
    """Where `initdb`, `postgres`, `pg_dump` and `psql` of one version live."""

    def version(path: str) -> float:
        try:
            return float(Path(path).parent.name)
        except ValueError:
            return 0.0

    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "postgres").exists():
            return Path(candidate)
    initdb = shutil.which("initdb")
    if initdb is not None:
        return Path(os.path.realpath(initdb)).parent
    raise PostgresError("PostgreSQL is not installed (scripts/setup.sh installs `postgresql`)")


class PostgresServer(LocalService):
    def __init__(self, *, user: str = "rollbot", database: str = "rollbot") -> None:
        if not (_NAME.match(user) and _NAME.match(database)):
            raise ValueError("user and database must be plain lower-case SQL identifiers")
        self.user = user
        self.database = database
        self.port = 0
        self.bin_dir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.dir = Path(tempfile.mkdtemp(prefix="rollbot-postgres-"))
        self._as: dict[str, Any] = {}

    @property
    def dsn(self) -> str:
        """The libpq URI of the first database (psql, pg_dump and psycopg all read it)."""
        return self.url(self.database)

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def tool(self, name: str) -> str:
        """The path of one of this version's client tools (`pg_dump`, `psql`, …)."""
        assert self.bin_dir is not None, "start() first"
        return str(self.bin_dir / name)

    def _run(self, args: list[str]) -> None:
        done = subprocess.run(
            args, capture_output=True, cwd=self.dir, stdin=subprocess.DEVNULL, **self._as
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace").strip()
            raise PostgresError(f"{Path(args[0]).name} failed ({done.returncode}): {output}")

    def start(self) -> Self:
        self.bin_dir = postgres_bin_dir()
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                raise PostgresError(
                    f"running as root, and there is no `{SYSTEM_USER}` user to run PostgreSQL as"
                ) from None
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self._as = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
        data = self.dir / "data"
        self._run(
            [
                self.tool("initdb"),
                f"--pgdata={data}",
                f"--username={self.user}",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ]
        )
        self.port = free_port()
        log = (self.dir / "postgres.log").open("wb")
        self.proc = subprocess.Popen(
            [
                self.tool("postgres"),
                "-D", str(data),
                "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1",
                "-c", "unix_socket_directories=",
                # A throwaway test database: speed over durability.
                "-c", "fsync=off",
                "-c", "synchronous_commit=off",
                "-c", "full_page_writes=off",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.dir,
            start_new_session=True,
            **self._as,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 30
        while True:
            ready = subprocess.run(
                [self.tool("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                stdin=subprocess.DEVNULL,
            )
            if ready.returncode == 0:
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = (self.dir / "postgres.log").read_text(errors="replace")[-2000:]
                self.stop()
                raise PostgresError(f"postgres did not start:\n{tail}")
            time.sleep(0.1)
        self.create_database(self.database)
        return self

    def create_database(self, name: str) -> str:
        """A new, empty database; its DSN."""
        if not _NAME.match(name):
            raise ValueError(f"{name!r} is not a plain lower-case SQL identifier")
        self._run(
            [self.tool("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, name]
        )
        return self.url(name)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # "fast" shutdown
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

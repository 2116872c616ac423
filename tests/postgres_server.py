"""A throwaway PostgreSQL server for the tests: its own data folder, port and socket, started
from the machine's PostgreSQL binaries and stopped at the end of the session.

The binaries are looked for in ``$PG_BINDIR``, then ``pg_config --bindir``, then Debian's
``/usr/lib/postgresql/<version>/bin``. As root, the server runs as the ``postgres`` user
(PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MISSING = ("PostgreSQL's server binaries (initdb, postgres) were not found: install PostgreSQL "
           "(Debian: apt install postgresql) or set PG_BINDIR")


def find_bindir() -> Path | None:
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            candidates.append(Path(subprocess.check_output(  # noqa: S603 - our own lookup
                [pg_config, "--bindir"], text=True).strip()))
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = sorted((p for p in debian.iterdir() if p.name.isdigit()),
                          key=lambda p: int(p.name), reverse=True)
        candidates.extend(p / "bin" for p in versions)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "postgres").exists():
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    bindir: Path
    folder: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    async def create_database(self, name: str) -> str:
        """The URL of a new, empty database called ``name``."""
        import asyncpg  # the test extra's; only where a server runs

        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.database_url(name)

    def _run_as(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        return ["runuser", "-u", "postgres", "--"]

    def start(self) -> None:
        data = self.folder / "data"
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        if not data.exists():  # else a restart, on the data of the first start
            subprocess.run(  # noqa: S603 - the binaries found above
                [*self._run_as(), str(self.bindir / "initdb"), "-D", str(data), "-U",
                 "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
                check=True, capture_output=True)
        log = (self.folder / "server.log").open("wb")
        self.process = subprocess.Popen(  # noqa: S603
            [*self._run_as(), str(self.bindir / "postgres"), "-D", str(data),
             "-p", str(self.port), "-h", "127.0.0.1", "-k", str(self.folder),
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=300", "-c", "shared_buffers=64MB"],
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("PostgreSQL did not start: "
                                   + (self.folder / "server.log").read_text()[-2000:])
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.5):
                ready = subprocess.run(  # noqa: S603
                    [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                    capture_output=True, check=False)
                if ready.returncode == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError("PostgreSQL did not answer within 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # smart shutdown would wait for clients: fast is enough
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A running server, or ``RuntimeError(MISSING)`` when the binaries are not there."""
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError(MISSING)
    with tempfile.TemporaryDirectory(prefix="rcvb-pg-") as folder:
        server = PostgresServer(bindir, Path(folder), _free_port())
        try:
            server.start()
            yield server
        finally:
            server.stop()

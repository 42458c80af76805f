"""Where a node keeps its files: $ESRT_HOME (default ~/.esrt).

Layout:
    $ESRT_HOME/mfds.json        where the running mfds listens (url, pid); written once it answers
    $ESRT_HOME/mfds.pid         pid of the running mfds
    $ESRT_HOME/mfds.log         mfds's own log
    $ESRT_HOME/repository.db    the configuration repository (SQLite, owned by mfds)
    $ESRT_HOME/servers/NAME/    default root of region NAME:
        data/      data directory (relative --env file names resolve here; BDB environment)
        deploy/    deployed packages, one folder per package
        logs/      CASROOT: console.log, console.bak
        run/       region.pid, processes.json (every pid of the region), status.json
"""

import json
import os
from pathlib import Path


def esrt_home(environ=None):
    """Return the node's home directory from $ESRT_HOME, default ~/.esrt (not created)."""
    environ = os.environ if environ is None else environ
    value = environ.get("ESRT_HOME")
    if value:
        return Path(value).expanduser().resolve()
    return Path("~/.esrt").expanduser().resolve()


class Home:
    """The paths of one node's home directory."""

    def __init__(self, root=None):
        self.root = Path(root).resolve() if root is not None else esrt_home()

    @property
    def mfds_info(self):
        return self.root / "mfds.json"

    @property
    def mfds_pid(self):
        return self.root / "mfds.pid"

    @property
    def mfds_log(self):
        return self.root / "mfds.log"

    @property
    def repository(self):
        return self.root / "repository.db"

    def server_root(self, name):
        return self.root / "servers" / name

    def ensure(self):
        self.root.mkdir(parents=True, exist_ok=True)
        return self

    def read_mfds_info(self):
        """Return the dict mfds wrote about itself, or None when no mfds has run here."""
        try:
            return json.loads(self.mfds_info.read_text())
        except (OSError, ValueError):
            return None


def write_text_atomic(path, text, mode=None):
    """Write `text` so that a reader never sees a half-written file (with `mode`, the file
    gets those permissions before it appears)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    if mode is not None:
        tmp.chmod(mode)
    os.replace(tmp, path)


def write_json_atomic(path, data):
    """Write JSON so that a reader never sees a half-written file."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")

"""Directories of one region and the environment its programs run with.

Used by mfds (where to install packages), the region, the SEPs and `esrt batch run`, so that a
service and a batch program of the same server see exactly the same files.
"""

import os
from pathlib import Path

from esrt.home import Home

# GnuCOBOL looks a file's ASSIGN name up as DD_NAME, dd_NAME, then NAME; values of the first two
# are file names, so relative ones are made absolute against the data directory.
FILE_NAME_PREFIXES = ("DD_", "dd_")


class RegionPaths:
    """The directories of one region, from its definition (defaults under $ESRT_HOME)."""

    def __init__(self, definition, home=None):
        home = home if isinstance(home, Home) else Home(home)
        name = definition["name"]
        self.name = name
        self.root = Path(definition.get("root") or home.server_root(name))
        self.data = self._under_root(definition.get("data_dir"), "data")
        self.deploy = self._under_root(definition.get("deploy_dir"), "deploy")
        self.casroot = self._under_root(definition.get("casroot"), "logs")
        self.run = self.root / "run"

    def _under_root(self, value, default):
        if not value:
            return self.root / default
        path = Path(value)
        return path if path.is_absolute() else self.root / path

    @property
    def console_log(self):
        return self.casroot / "console.log"

    @property
    def console_bak(self):
        return self.casroot / "console.bak"

    @property
    def pid_file(self):
        return self.run / "region.pid"

    @property
    def processes_file(self):
        return self.run / "processes.json"

    @property
    def status_file(self):
        return self.run / "status.json"

    def create(self, standby=False):
        """Make the region's directories; a standby leaves the data and deploy directories
        alone (they are on a shared disk that another node may hold) until it is activated."""
        for path in (self.root, self.casroot, self.run) if standby else \
                (self.root, self.data, self.deploy, self.casroot, self.run):
            path.mkdir(parents=True, exist_ok=True)
        return self


LOCALTIME = "/etc/localtime"


def program_environment(definition, paths, base=None):
    """Return the environment for a SEP or batch program of this region.

    Starts from `base` (default os.environ), adds the definition's env with DD_/dd_ values
    and values starting with ./ or ../ resolved against the data directory, and points
    COB_FILE_PATH at the data directory so any other relative file name lands there too.
    """
    environ = dict(os.environ if base is None else base)
    environ.setdefault("COB_FILE_PATH", str(paths.data))
    if "TZ" not in environ and os.path.exists(LOCALTIME):
        # The node's time zone, read once: without TZ, glibc stats /etc/localtime on every
        # local-time conversion, i.e. on every FUNCTION CURRENT-DATE of every call.
        environ["TZ"] = ":" + LOCALTIME
    for name, value in (definition.get("env") or {}).items():
        environ[name] = resolve_env_value(name, value, paths.data)
    environ["ESRT_SERVER"] = definition["name"]
    # ESFH (the transactional file handler) finds its Berkeley DB environment and the commit
    # durability here, in SEPs and batch programs alike.
    environ["ESFH_DURABILITY"] = definition.get("durability") or "sync"
    environ["ESRT_DATA_DIR"] = str(paths.data)
    # ... or its PostgreSQL store, when the server has one (the store setting).
    if definition.get("store"):
        environ["ESFH_STORE"] = definition["store"]
    else:
        environ.pop("ESFH_STORE", None)
    return environ


def resolve_env_value(name, value, data_dir):
    """Resolve one env value: file names become absolute paths under data_dir."""
    looks_relative = value.startswith(("./", "../"))
    if ((name.startswith(FILE_NAME_PREFIXES) or looks_relative) and value
            and not os.path.isabs(value)):
        return str(Path(data_dir) / value)
    return value

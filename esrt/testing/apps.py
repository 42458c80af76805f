"""Ready-made applications for lab tests: CBLAPP01/CBLAPP02 as portable regions on shared disks.

`prepare_region(directory, ip, name, program)` fills a directory (the shared disk, mounted where
the nodes will mount it) with everything a node needs to run the region with nothing in its own
repository: the region file, the deploy directory holding the service (srv01 or srv02), and
the data directory with the program's file initialised by its INITFILE batch (counter 0).
`prepare_cblapp01(directory, ip, port)` is the common case. `make_service(lab, ...)` does all
of it for a lab: a disk, its contents, a resource group, and waits until the group serves.
"""

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PORT = 9003


@dataclass(frozen=True)
class App:
    """An example program: where it is, the batch that creates its file, its service package,
    its file's environment name and its input parameters (the others are outputs)."""

    directory: str
    source: str
    batch: str
    service: str
    file_name: str
    inputs: tuple = ()

    def path(self, name):
        return EXAMPLES / self.directory / name


PROGRAMS = {
    "CBLAPP01": App("cblapp01", "cblapp01.cbl", "initfile1.cbl", "srv01", "APPFILE01"),
    "CBLAPP02": App("cblapp01", "cblapp02.cbl", "initfile2.cbl", "srv02", "APPFILE02"),
    # Updates two of many records per call (examples/accounts).
    "XFER": App("accounts", "xfer.cbl", "acctinit.cbl", "accounts", "ACCOUNTS",
                ("LK-FROM", "LK-TO", "LK-AMOUNT")),
}

_car_cache = {}


class AppError(RuntimeError):
    """An example application could not be built; the message says why."""


def _esrt(args, home, cwd):
    result = subprocess.run([sys.executable, "-m", "esrt", *args], cwd=cwd, capture_output=True,
                            text=True, timeout=300, env=dict(os.environ, ESRT_HOME=str(home)))
    if result.returncode != 0:
        raise AppError(f"`esrt {' '.join(args)}` failed ({result.returncode}) in {cwd}:\n"
                       f"{result.stdout}{result.stderr}")
    return result


def build_car(program="CBLAPP01", workdir=None):
    """Build the deploy package of an example program of PROGRAMS (its inputs "in", every
    other parameter an output) with the real tools; return its path. Built once per process,
    program and `workdir`."""
    key = (program, str(workdir))
    if key in _car_cache and _car_cache[key].exists():
        return _car_cache[key]
    app = PROGRAMS[program]
    source, service = app.source, app.service
    if not app.path(source).exists():
        raise AppError(f"{program}'s source is not at {app.path(source)}: esrt.testing.apps "
                       "needs the esrt source tree (examples/)")
    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix=f"esrt-{service}-"))
    work.mkdir(parents=True, exist_ok=True)
    home = work / "imtk-home"
    home.mkdir(exist_ok=True)
    (work / source).write_bytes(app.path(source).read_bytes())
    _esrt(["imtk", "defmap", "--src", source, "--service", service], home, work)
    mapping = work / f"{service}.mapping.json"
    document = json.loads(mapping.read_text())
    # The recording clients read the counters from the reply, so every other field comes back.
    for parameter in document["programs"][0]["parameters"]:
        parameter["direction"] = "in" if parameter["name"] in app.inputs else "out"
    mapping.write_text(json.dumps(document, indent=2))
    _esrt(["imtk", "generate", "--service", service], home, work)
    car = work / f"{service}.car"
    _car_cache[key] = car
    return car


def prepare_cblapp01(directory, ip, port=PORT, name="ESHA01", seps=1, car=None, extra=None):
    """prepare_region for CBLAPP01 (service srv01.CBLAPP01); returns the region file."""
    return prepare_region(directory, ip, name, "CBLAPP01", port, seps, car, extra)


def prepare_region(directory, ip, name="ESHA01", program="CBLAPP01", port=PORT, seps=1,
                   car=None, extra=None):
    """Populate `directory` with region `name` serving `program` on ip:port; return the region
    file.

    `directory` must be where the shared disk is mounted now AND where the nodes will mount it
    (Lab.mounted(disk, at=mountpoint)), since the region file holds absolute paths. Layout:
    NAME.region.json, deploy/<package>, data/<file>, logs/ (CASROOT). The region root (run
    files) is left to each node's ESRT_HOME. `car` is the program's deploy package (default:
    built here with the real tools); `extra` adds settings to the definition (e.g.
    {"durability": "write-nosync"}).
    """
    from esrt.cobol.batch import run_batch
    from esrt.cobol.esfh_build import esfh_cobc_args, esfh_library
    from esrt.mapping.car import install_car
    from esrt.paths import RegionPaths, program_environment
    from esrt.settings import SettingError, validate_server
    app = PROGRAMS[program]
    base = Path(directory)
    car = Path(car) if car else build_car(program)
    try:
        # The same validation (and so the same file) as `esrt server export NAME`.
        definition = validate_server({
            "name": name, "seps": seps,
            # The lab network is the test's own: anyone on it may call (auth=none, said so).
            "listeners": [{"name": "Web Services", "address": f"{ip}:{port}", "auth": "none"}],
            "env": {f"DD_{app.file_name}": app.file_name},
            "deploy_dir": str(base / "deploy"),
            "data_dir": str(base / "data"), "casroot": str(base / "logs"),
            **(extra or {})})
    except SettingError as exc:
        raise AppError(f"region {name} for {ip}:{port} is not a valid definition: {exc}") \
            from None
    install_car(car.read_bytes(), definition["deploy_dir"])
    # No "root" in the definition: the region's run files (pids of one node's PID namespace)
    # must stay in each node's own ESRT_HOME, never on the disk that moves between nodes.
    with tempfile.TemporaryDirectory(prefix="esrt-prepare-") as scratch_home:
        paths = RegionPaths(definition, home=scratch_home).create()
        code = run_batch(str(app.path(app.batch)), program_environment(definition, paths),
                         cwd=str(paths.data), build_dir=str(Path(scratch_home) / "batch"),
                         extra_args=esfh_cobc_args(esfh_library()))
    if code != 0:
        raise AppError(f"{app.batch} ended with exit code {code} while preparing {name} in "
                       f"{base}; see its output above")
    region_file = base / f"{name}.region.json"
    region_file.write_text(json.dumps(definition, indent=2, sort_keys=True))
    return region_file


class Service:
    """One resource group of a lab running one region; `url` is its relocatable address."""

    def __init__(self, lab, group, ip, region, program, mountpoint, region_file, port=PORT,
                 faulty_disk=False, seps=1):
        self.lab = lab
        self.group = group
        self.ip = ip
        self.region = region
        self.program = program
        self.service = f"{PROGRAMS[program].service}.{program}"
        self.mountpoint = mountpoint
        self.region_file = region_file
        # The region's data directory; an esrt-faultfs mount when made with faulty_disk.
        self.data_dir = mountpoint / "data"
        self.faulty_disk = faulty_disk
        self.seps = seps
        self.url = f"http://{ip}:{port}"

    def node(self):
        """The node the group's region runs on now (None while it runs nowhere)."""
        return self.lab.locate(self.group)

    def set_region_parameter(self, name, value):
        """Set one more ocf:esrt:region parameter (e.g. check_mfds) on the group's region."""
        self.lab.crm("crm_resource", "--resource", f"{self.group}-region", "--set-parameter",
                     name, "--parameter-value", str(value))

    def read_on(self, node, relative):
        """The text of a file on the shared disk as `node` sees it (it must hold the disk)."""
        return node.run(["cat", str(self.mountpoint / relative)]).stdout


def make_service(lab, group, host_part, region, program="CBLAPP01", prefer=None,
                 extra_resources=(), timeout=90, disk_mb=64, faulty_disk=False, seps=1):
    """A running group `group` of `lab`: a new shared disk of `disk_mb` MB holding region
    `region` (serving `program`), the address SUBNET.`host_part`, preferring node `prefer`
    (default: the first); returns its Service once it serves.

    With `faulty_disk`, the region's data directory is an esrt-faultfs mirror of the disk's
    data (ocf:esrt:faultfs in the group), for esrt.testing.faults.io_errors and slow_io on
    Service.data_dir."""
    ip = f"{lab.subnet}.{host_part}"
    disk = lab.add_disk(group, size_mb=disk_mb)
    mountpoint = lab.workdir / "mnt" / group
    mountpoint.mkdir(parents=True, exist_ok=True)
    before_region = ()
    with lab.mounted(disk, at=mountpoint) as path:
        region_file = prepare_region(path, ip, region, program, seps=seps)
        if faulty_disk:
            from esrt.testing import faultfs_agent
            # The data prepared above goes under the mirror: DATA-disk holds it, DATA (the
            # region's data_dir) is where esrt-faultfs shows it.
            data = Path(path) / "data"
            data.rename(data.with_name("data-disk"))
            data.mkdir()
            faultfs_agent.install_agent()
            before_region = (faultfs_agent.primitive_xml(
                f"{group}-faultfs", mountpoint / "data-disk", mountpoint / "data"),)
    prefer = prefer or lab.nodes[0]
    lab.add_group(group, ip, disk, str(mountpoint), str(region_file), prefer=prefer,
                  region_name=region, extra_resources=extra_resources,
                  before_region=before_region)
    lab.wait_group(group, on=prefer, timeout=timeout)
    return Service(lab, group, ip, region, program, mountpoint, region_file,
                   faulty_disk=faulty_disk, seps=seps)

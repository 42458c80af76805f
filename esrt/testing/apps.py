"""Ready-made applications for lab tests: CBLAPP01 as a portable region on a shared disk.

`prepare_cblapp01(directory, ip, port)` fills a directory (the shared disk, mounted where the
nodes will mount it) with everything a node needs to run the region with nothing in its own
repository: the region file, the deploy directory holding service srv01, and the data
directory with APPFILE01 initialised by INITFILE1 (counter 0).
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "cblapp01"
SERVICE = "srv01"

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


def build_cblapp01_car(workdir=None):
    """Build srv01.car (CBLAPP01, every parameter an output) with the real tools; return it.

    Built once per process and `workdir`.
    """
    key = str(workdir)
    if key in _car_cache and _car_cache[key].exists():
        return _car_cache[key]
    if not (EXAMPLES / "cblapp01.cbl").exists():
        raise AppError(f"CBLAPP01's source is not at {EXAMPLES}: esrt.testing.apps needs the "
                       "esrt source tree (examples/cblapp01)")
    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="esrt-cblapp01-"))
    work.mkdir(parents=True, exist_ok=True)
    home = work / "imtk-home"
    home.mkdir(exist_ok=True)
    (work / "cblapp01.cbl").write_bytes((EXAMPLES / "cblapp01.cbl").read_bytes())
    _esrt(["imtk", "defmap", "--src", "cblapp01.cbl", "--service", SERVICE], home, work)
    mapping = work / f"{SERVICE}.mapping.json"
    document = json.loads(mapping.read_text())
    # The recording clients read the counter from the reply, so every field comes back.
    for parameter in document["programs"][0]["parameters"]:
        parameter["direction"] = "out"
    mapping.write_text(json.dumps(document, indent=2))
    _esrt(["imtk", "generate", "--service", SERVICE], home, work)
    car = work / f"{SERVICE}.car"
    _car_cache[key] = car
    return car


def prepare_cblapp01(directory, ip, port, name="ESHA01", seps=1, car=None, extra=None):
    """Populate `directory` with region `name` serving CBLAPP01 on ip:port; return the region file.

    `directory` must be where the shared disk is mounted now AND where the nodes will mount it
    (Lab.mounted(disk, at=mountpoint)), since the region file holds absolute paths. Layout:
    NAME.region.json, deploy/srv01, data/APPFILE01, logs/ (CASROOT). The region root (run
    files) is left to each node's ESRT_HOME.
    `extra` adds settings to the definition (e.g. {"durability": "async"}).
    """
    from esrt.cobol.batch import run_batch
    from esrt.cobol.esfh_build import esfh_cobc_args, esfh_library
    from esrt.mapping.car import install_car
    from esrt.paths import RegionPaths, program_environment
    from esrt.settings import SettingError, validate_server
    base = Path(directory)
    car = Path(car) if car else build_cblapp01_car()
    try:
        # The same validation (and so the same file) as `esrt server export NAME`.
        definition = validate_server({
            "name": name, "seps": seps,
            "listeners": [{"name": "Web Services", "address": f"{ip}:{port}"}],
            "env": {"DD_APPFILE01": "APPFILE01"},
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
        code = run_batch(str(EXAMPLES / "initfile1.cbl"), program_environment(definition, paths),
                         cwd=str(paths.data), build_dir=str(Path(scratch_home) / "batch"),
                         extra_args=esfh_cobc_args(esfh_library()))
    if code != 0:
        raise AppError(f"INITFILE1 ended with exit code {code} while preparing {name} in "
                       f"{base}; see its output above")
    region_file = base / f"{name}.region.json"
    region_file.write_text(json.dumps(definition, indent=2, sort_keys=True))
    return region_file

"""Deploy packages (.car): build them from a mapping, check them, install them.

A .car is a zip archive holding:
    manifest.json           {"format": "esrt-car/1", "service", "mapping", "programs": [{"program",
                             "entry", "module"}], "files": {name: sha256}, "created", "cobc"}
    <service>.mapping.json  the interface mapping (see esrt.mapping.parser)
    <PROGRAM>.so            one compiled module per program

Installing never trusts the archive: names must be plain file names (no folders, no '..'), sizes
are bounded, every file must match its checksum in the manifest, and the package appears in the
deploy directory in one rename, so a SEP never sees half a package.
"""

import datetime
import hashlib
import io
import json
import os
import re
import shutil
import zipfile
from pathlib import Path

CAR_FORMAT = "esrt-car/1"
MANIFEST = "manifest.json"
MAX_CAR_BYTES = 64 * 1024 * 1024
MAX_MEMBER_BYTES = 256 * 1024 * 1024
MAX_MEMBERS = 256
# What all members may unpack to together: each member's own limit alone would let a 64 MB
# package ask for 256 times 256 MB of memory.
MAX_UNPACKED_BYTES = 512 * 1024 * 1024
# The service (package) name becomes a directory of the deploy folder: the name imtk accepts,
# and short enough for any file system.
SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# Members are written as files of that directory: plain names only (no paths, links or dots
# first), as `esrt imtk generate` writes them.
MEMBER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


class CarError(ValueError):
    """A package that cannot be built or installed; the message says why and what to do."""


def mapping_file_name(service):
    return f"{service}.mapping.json"


def build_car(mapping_doc, mapping_path, modules, out_path, cobc_version=""):
    """Write a .car holding the mapping file and the compiled modules; return the manifest.

    `modules` maps program name -> path of its compiled module.
    """
    service = mapping_doc["service"]
    members = {mapping_file_name(service): Path(mapping_path).read_bytes()}
    programs = []
    for program in mapping_doc["programs"]:
        module = Path(modules[program["program"]])
        members[module.name] = module.read_bytes()
        programs.append({"program": program["program"], "entry": program["entry"],
                         "module": module.name})
    manifest = {
        "format": CAR_FORMAT,
        "service": service,
        "mapping": mapping_file_name(service),
        "programs": programs,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in members.items()},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cobc": cobc_version,
    }
    out_path = Path(out_path)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST, json.dumps(manifest, indent=2) + "\n")
        for name, data in members.items():
            archive.writestr(name, data)
    os.replace(tmp, out_path)
    return manifest


def read_car(data):
    """Check a .car given as bytes; return (manifest, {member name: bytes}) or raise CarError."""
    if len(data) > MAX_CAR_BYTES:
        raise CarError(f"package is {len(data)} bytes, more than the {MAX_CAR_BYTES} allowed")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise CarError("not a .car package (not a zip archive): build one with "
                       "`esrt imtk generate --service NAME`") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise CarError(f"package holds {len(infos)} files, more than {MAX_MEMBERS}")
        unpacked = sum(info.file_size for info in infos)
        if unpacked > MAX_UNPACKED_BYTES:
            raise CarError(f"package would unpack to {unpacked} bytes, more than the "
                           f"{MAX_UNPACKED_BYTES} allowed")
        members = {}
        for info in infos:
            name = info.filename
            if not MEMBER_NAME.fullmatch(name):
                raise CarError(f"package member {name[:80]!r} is not a plain file name (1 to "
                               "128 letters, digits, '_', '-' or '.', not starting with '.'); "
                               "refusing it")
            if info.file_size > MAX_MEMBER_BYTES:
                raise CarError(f"package member {name} is too large ({info.file_size} bytes)")
            if name in members:
                raise CarError(f"package member {name} appears twice")
            try:
                members[name] = archive.read(info)
            except (zipfile.BadZipFile, OSError, RuntimeError, ValueError) as exc:
                raise CarError(f"package member {name} cannot be read: {exc}") from None
    manifest = _check_manifest(members)
    return manifest, members


def _check_manifest(members):
    if MANIFEST not in members:
        raise CarError("package has no manifest.json: build it with `esrt imtk generate`")
    try:
        manifest = json.loads(members[MANIFEST])
    except ValueError as exc:
        raise CarError(f"manifest.json is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != CAR_FORMAT:
        raise CarError(f"manifest.json is not an {CAR_FORMAT} manifest; rebuild the package "
                       "with this version of esrt")
    service = manifest.get("service")
    if not isinstance(service, str) or not SERVICE_NAME.fullmatch(service):
        raise CarError(f"manifest names an invalid service {str(service)[:80]!r}: a service "
                       "name is 1 to 64 letters, digits, '_', '-' or '.', starting with a "
                       "letter or digit")
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise CarError("manifest.json has no file list")
    for name, digest in files.items():
        if name not in members:
            raise CarError(f"manifest lists {name} but the package does not hold it")
        if hashlib.sha256(members[name]).hexdigest() != digest:
            raise CarError(f"{name} does not match its checksum in the manifest: the package is "
                           "damaged; rebuild it")
    extra = set(members) - set(files) - {MANIFEST}
    if extra:
        raise CarError(f"package holds files the manifest does not list: "
                       f"{', '.join(sorted(extra))}")
    if manifest.get("mapping") not in files:
        raise CarError("manifest names no mapping file held by the package")
    programs = manifest.get("programs")
    if not isinstance(programs, list) or not programs:
        raise CarError("manifest lists no programs")
    for program in programs:
        if not isinstance(program, dict) or program.get("module") not in files:
            raise CarError(f"manifest program entry {program!r} names no module held by the "
                           f"package")
    return manifest


def install_car(data, deploy_dir):
    """Check and install a package into deploy_dir/<service>/; return its manifest.

    The new folder replaces an older one of the same service in a single rename.
    """
    manifest, members = read_car(data)
    deploy_dir = Path(deploy_dir)
    deploy_dir.mkdir(parents=True, exist_ok=True)
    service = manifest["service"]
    staging = deploy_dir / f".{service}.new.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for name, content in members.items():
        (staging / name).write_bytes(content)
    target = deploy_dir / service
    retired = deploy_dir / f".{service}.old.{os.getpid()}"
    if target.exists():
        os.replace(target, retired)
    os.replace(staging, target)
    shutil.rmtree(retired, ignore_errors=True)
    return manifest


def installed_manifests(deploy_dir):
    """Return {service: manifest} for every package installed in deploy_dir."""
    found = {}
    deploy_dir = Path(deploy_dir)
    if not deploy_dir.is_dir():
        return found
    for folder in sorted(deploy_dir.iterdir()):
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        try:
            found[folder.name] = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError):
            continue
    return found

"""A server's definition, from where it is kept: a region file, or the node's mfds.

A region file holds a server's whole definition as JSON (`esrt server export NAME`), so that a
region can start with nothing in the node's repository: `casstart --config`, the OCF agent, a
region whose definition lives on a cluster's shared disk. casstart hands the region process its
definition in the same form (run/definition.json). Such a file is read and checked here only.
"""

import json
from pathlib import Path

from esrt.node.mfds_client import MfdsClient, MfdsError
from esrt.settings import SettingError, validate_server
from esrt.states import ExitCode


class RegionFileError(Exception):
    """A region file cannot be used: the message names the file, the problem and the remedy;
    `exit_code` is the OCF code a command exits with (6 not configured, 2 wrong server)."""

    def __init__(self, message, exit_code=ExitCode.NOT_CONFIGURED):
        super().__init__(message)
        self.exit_code = exit_code


def read_region_file(path):
    """Return the validated definition held in region file `path` (RegionFileError)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RegionFileError(f"region file {path}: cannot read it ({exc.strerror or exc}); "
                              "give the path of a file written by `esrt server export NAME`"
                              ) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise RegionFileError(f"region file {path} is not valid JSON ({exc}); write it with "
                              "`esrt server export NAME > FILE`") from None
    try:
        return validate_server(data)
    except SettingError as exc:
        raise RegionFileError(f"region file {path} holds an invalid server definition: "
                              f"{exc}") from None


def region_file_definition(path, name=None):
    """The definition in region file `path`; when `name` is given it must be that server's
    (RegionFileError with exit code 2 otherwise: the wrong file for this server)."""
    definition = read_region_file(path)
    if name and name != definition["name"]:
        raise RegionFileError(f"region file {path} defines server {definition['name']!r}, not "
                              f"{name!r}: use -r {definition['name']} or the right file",
                              ExitCode.USAGE)
    return definition


def server_definition(name, home=None):
    """Server `name`'s definition as the node's mfds holds it (home: an esrt.home.Home, a
    path, or None for $ESRT_HOME). Raises MfdsUnavailable or MfdsError (404: no such server)."""
    return MfdsClient.from_home(home).get_server(name)["definition"]


def save_definition(client, definition):
    """Create server definition["name"] through `client` (an MfdsClient), or update it when it
    exists; return "created" or "updated" (`esrt server import FILE`)."""
    name = definition["name"]
    try:
        client.get_server(name)
    except MfdsError as exc:
        if exc.status != 404:
            raise
        client.create_server(definition)
        return "created"
    client.update_server(name, {key: value for key, value in definition.items()
                                if key != "name"})
    return "updated"

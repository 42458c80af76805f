"""`esrt doctor [--server NAME ...] [--config FILE ...] [--json]`: check this node and say what
to fix (esrt.node.doctor). Exit code 0 when nothing fails (warnings allowed), 1 when something
does: scripts and provisioning tools can stop on it."""

import json

from esrt.home import Home
from esrt.states import ExitCode

MARKS = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


def node_definitions(home, names=(), region_files=()):
    """The server definitions to check: those of `region_files`, then those the node's mfds
    holds (read from its repository when mfds is down), narrowed to `names` if given."""
    from esrt.node.definitions import read_region_file
    definitions = [read_region_file(path) for path in region_files]
    if region_files and not names:
        return definitions
    from esrt.node.mfds_client import MfdsClient, MfdsError, MfdsUnavailable
    try:
        held = [server.get("definition", server)
                for server in MfdsClient.from_home(home, timeout=5.0).list_servers()]
    except (MfdsUnavailable, MfdsError, OSError):
        from esrt.mfds.repository import read_definitions
        held = read_definitions(home.repository) if home.repository.exists() else []
    if names:
        unknown = set(names) - {d["name"] for d in held} - {d["name"] for d in definitions}
        if unknown:
            from esrt.cli.errors import CommandError
            raise CommandError(f"no server {', '.join(sorted(unknown))} is defined on this node "
                               "(`esrt server list`); give its region file with --config")
        held = [d for d in held if d["name"] in names]
    return definitions + held


def cmd_doctor(args):
    from esrt.node.doctor import FAIL, run_checks
    home = Home()
    findings = run_checks(home, node_definitions(home, args.server or (), args.config or ()))
    failed = any(finding.status == FAIL for finding in findings)
    if args.json:
        print(json.dumps({"ok": not failed, "home": str(home.root),
                          "findings": [finding.as_dict() for finding in findings]}, indent=2))
    else:
        for finding in findings:
            print(f"{MARKS[finding.status]}  {finding.check:<12} {finding.detail}")
            if finding.fix:
                print(f"{'':<6}{'':<12} fix: {finding.fix}")
        problems = sum(finding.status != "ok" for finding in findings)
        print(f"\n{'something fails' if failed else 'ready'}: {len(findings)} checks, "
              f"{problems} to look at")
    return ExitCode.ERROR if failed else ExitCode.OK


def add_doctor_command(commands):
    doctor = commands.add_parser("doctor", help="check this node (packages, ESFH, limits, "
                                 "ports, disks, clock, ESRT_HOME, mfds, PostgreSQL stores) and "
                                 "say what to fix")
    doctor.add_argument("--server", action="append", metavar="NAME",
                        help="check this server only (repeatable; default: every server "
                        "defined on the node)")
    doctor.add_argument("--config", action="append", metavar="FILE",
                        help="also check the server of this region file (repeatable)")
    doctor.add_argument("--json", action="store_true",
                        help="print the findings as JSON: {ok, home, findings: [{check, "
                        "status, detail, fix}]}")
    doctor.set_defaults(func=cmd_doctor)

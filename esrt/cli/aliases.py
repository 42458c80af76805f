"""MF-style commands (`casstart /rESSRV01 /w`, `imtkmake -defmap src=...`) as their own scripts.

Each alias rewrites its arguments into the `esrt` spelling and runs the same code, so old HA
and build scripts work with few edits. Both `/rNAME` and `-r NAME` spellings are accepted.
"""

import sys
from pathlib import Path

from esrt.cli import main as cli
from esrt.states import ExitCode


def translate_slash_options(argv, flags):
    """Rewrite MF slash options: /rNAME -> -r NAME; single-letter flags per `flags` mapping.

    `flags` maps a lower-case letter to the esrt option it stands for (with a value for 'r').
    Options already in esrt spelling pass through unchanged.
    """
    out = []
    for arg in argv:
        # The value of --config is a path even when it does not exist (yet): never an option.
        after_config = bool(out) and out[-1] == "--config"
        if (arg.startswith("/") and len(arg) >= 2 and not Path(arg).exists()
                and not after_config):
            letter, value = arg[1].lower(), arg[2:]
            if letter == "r":
                out += ["--region", value] if value else ["--region"]
                continue
            if letter in flags and not value:
                out.append(flags[letter])
                continue
            if arg[1:].lower() in flags:
                out.append(flags[arg[1:].lower()])
                continue
            raise SystemExit(f"{arg}: unknown option; use /rNAME" +
                             "".join(f", /{k}" for k in flags))
        out.append(arg)
    return out


def casstart():
    argv = translate_slash_options(sys.argv[1:], {"w": "--wait"})
    sys.exit(cli.main(["casstart"] + argv, prog="casstart"))


def casstop():
    argv = translate_slash_options(sys.argv[1:], {"f": "--force", "force": "--force"})
    sys.exit(cli.main(["casstop"] + argv, prog="casstop"))


def mfds():
    sys.exit(cli.main(["mfds"] + sys.argv[1:], prog="mfds"))


def mdump():
    """`mdump [host] [server]`: the directory as text for HA monitor scripts."""
    from esrt.ha import mdump as dump
    dump.main(sys.argv[1:])


def parse_key_values(argv, command):
    """imtkmake's key=value arguments -> dict; anything else is an error naming it."""
    values = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep:
            raise SystemExit(f"{command}: {arg!r} should be key=value (e.g. service=srv01)")
        values[key.lower()] = value
    return values


def imtkmake(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    usage = ("usage: imtkmake -defmap src=PROGRAM.cbl service=NAME [type=ejb]\n"
             "       imtkmake -generate service=NAME [type=ejb]")
    if not argv or argv[0].lower() not in ("-defmap", "-generate"):
        print(usage, file=sys.stderr)
        sys.exit(ExitCode.USAGE)
    action = argv[0].lower()[1:]
    values = parse_key_values(argv[1:], "imtkmake")
    values.pop("type", None)  # MF's type=ejb chose a J2EE wrapper; esrt serves JSON and esrt-wire
    if "service" not in values or (action == "defmap" and "src" not in values):
        print(usage, file=sys.stderr)
        sys.exit(ExitCode.USAGE)
    esrt_args = ["imtk", action, "--service", values.pop("service")]
    if action == "defmap":
        esrt_args += ["--src", values.pop("src")]
    if values:
        print(f"imtkmake: unknown setting(s) {', '.join(sorted(values))}", file=sys.stderr)
        sys.exit(ExitCode.USAGE)
    sys.exit(cli.main(esrt_args, prog="imtkmake"))


def mfdepinst(argv=None):
    """mfdepinst PKG.car: deploy to the server named by ./.mfdeploy and write ./deploy.txt."""
    from esrt.deploy import deploy_package, read_mfdeploy, write_deploy_report
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: mfdepinst PACKAGE.car   (run in a directory holding .mfdeploy)",
              file=sys.stderr)
        sys.exit(ExitCode.USAGE)
    car_name = argv[0]
    try:
        settings = read_mfdeploy(".")
        server = settings["MFUS_SERVER"]
        answer = deploy_package(car_name, server)
    except cli.known_errors() as exc:
        server = locals().get("server", "?")
        write_deploy_report(".", car_name, server, f"error: {exc}", ok=False)
        print(f"mfdepinst: error: {exc}", file=sys.stderr)
        sys.exit(ExitCode.ERROR)
    message = answer.get("message") or f"deployed {car_name} to {server}"
    write_deploy_report(".", car_name, server, message, ok=True)
    print(message)
    sys.exit(ExitCode.OK)

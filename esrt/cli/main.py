"""`esrt` command line: one command, subcommands per task.

Each subcommand parses its arguments and calls a library function that the tests call too; it
prints what it did, and on failure what failed and what to do, with a non-zero exit code.
"""

import argparse
import json
import os
import sys

from esrt.cli.errors import CommandError, add_tls_client_options, tls_client_files
from esrt.home import Home
from esrt.node.definitions import RegionFileError
from esrt.states import ExitCode


def say(message):
    print(message, flush=True)


def _home(args):
    return Home(getattr(args, "home", None))


# --- mfds ------------------------------------------------------------------------------------

def cmd_mfds(args):
    from esrt.mfds import daemon
    home = _home(args).ensure()
    if args.stop:
        if daemon.stop_daemon(home):
            say(f"mfds stopped (ESRT_HOME={home.root})")
        else:
            say(f"no mfds was running for ESRT_HOME={home.root}")
        return ExitCode.OK
    if args.status:
        info = daemon.running_info(home)
        if info:
            say(f"mfds running on {info['url']} (pid {info['pid']}, ESRT_HOME={home.root})")
            return ExitCode.OK
        say(f"no mfds running for ESRT_HOME={home.root}")
        return ExitCode.NOT_RUNNING
    from esrt.mfds import server
    if args.daemon:
        info = daemon.start_daemon(home, args.listen, extra=server.tls_arguments(args))
        say(f"mfds started on {info['url']} (pid {info['pid']}, ESRT_HOME={home.root})")
        return ExitCode.OK
    return server.main(["--listen", args.listen, "--home", str(home.root),
                        *server.tls_arguments(args)])


# --- server ----------------------------------------------------------------------------------

def _mfds():
    from esrt.node.mfds_client import MfdsClient
    return MfdsClient.from_home()


def cmd_server_list(args):
    servers = _mfds().list_servers()
    if not servers:
        say("no servers defined: create one with `esrt server create NAME --listener ...`")
    for server in servers:
        definition = server.get("definition", {})
        listeners = ", ".join(f"{each['name']}={each['address']}"
                              for each in definition.get("listeners", []))
        say(f"{server['name']:<12} {server.get('mfServerStatus', '?'):<9} "
            f"seps={definition.get('seps')} {listeners}")
    return ExitCode.OK


def cmd_server_show(args):
    say(json.dumps(_mfds().get_server(args.name), indent=2, sort_keys=True))
    return ExitCode.OK


def cmd_server_delete(args):
    _mfds().delete_server(args.name)
    say(f"server {args.name} deleted")
    return ExitCode.OK


def cmd_server_status(args):
    from esrt.node.members import members_lines
    from esrt.region.monitor import region_state
    state = region_state(_home(args), args.name)
    say(state.text)
    if state.pid:
        for line in members_lines(state.status):
            say(line)
    return state.code


# --- imtk ------------------------------------------------------------------------------------

def cmd_imtk_defmap(args):
    from esrt.imtk import define_mapping
    path, document = define_mapping(args.src, args.service, copy_dirs=args.copy_dir,
                                    out_dir=args.output_dir)
    for program in document["programs"]:
        names = ", ".join(f"{p['name']} ({p['direction']})" for p in program["parameters"])
        say(f"{program['program']}: {len(program['parameters'])} parameter(s): {names}")
    say(f"mapping written to {path}: edit directions (in/out/io) there, then run "
        f"`esrt imtk generate --service {args.service}`")
    return ExitCode.OK


def cmd_imtk_generate(args):
    from esrt.imtk import generate_package
    path, manifest = generate_package(args.service, mapping_file=args.mapping,
                                      out_dir=args.output_dir, copy_dirs=args.copy_dir)
    programs = ", ".join(p["program"] for p in manifest["programs"])
    say(f"package {path} written: service {manifest['service']}, program(s) {programs}")
    return ExitCode.OK


# --- regions ---------------------------------------------------------------------------------

def _run_here(name, home, definition):
    """casstart --foreground: what cannot get better by trying again exits with a code that
    the server's systemd unit does not restart on (esrt.node.units)."""
    from esrt.node.control import RegionControlError, run_region_here
    from esrt.node.mfds_client import MfdsError
    try:
        run_region_here(name, home=home, definition=definition)
    except RegionControlError as exc:
        raise CommandError(f"{exc}; a server with a systemd unit is started and stopped with "
                           f"systemctl (esrt-server@{name})", ExitCode.ALREADY_RUNNING) from None
    except MfdsError as exc:
        if exc.status != 404:
            raise
        raise CommandError(f"{name}: {exc}; define it (`esrt server create {name} ...`)",
                           ExitCode.NOT_CONFIGURED) from None


def cmd_casstart(args):
    from esrt.node.control import start_region
    from esrt.node.definitions import region_file_definition
    definition, origin = None, ""
    if getattr(args, "config", None):
        # Nothing is read from or written to the node's repository: mfds need not even run.
        definition = region_file_definition(args.config, args.region)
        origin = f" from {args.config}"
    name = definition["name"] if definition else args.region
    if args.foreground:
        _run_here(name, _home(args), definition)
    status = start_region(name, home=_home(args), definition=definition, wait=args.wait,
                          timeout=args.timeout, progress=say if args.wait else None)
    if args.wait:
        for listener in status.get("listeners", []):
            say(f"{name}: listener \"{listener.get('CN')}\" {listener.get('mfListenerStatus')}"
                f" on {listener.get('address')}")
        say(f"{name} started{origin} (pid {status.get('pid')})")
    else:
        say(f"{name} starting{origin} (pid {status.get('pid')}); `esrt server status "
            f"{name}` tells when it is up")
    return ExitCode.OK


def cmd_casstop(args):
    from esrt.node.control import stop_region
    say(stop_region(args.region, home=_home(args), force=args.force, timeout=args.timeout,
                    progress=say))
    return ExitCode.OK


# --- deploy, batch, call -----------------------------------------------------------------------

def cmd_deploy(args):
    from esrt.deploy import deploy_package
    answer = deploy_package(args.package, args.server)
    say(answer.get("message") or f"deployed {args.package} to {args.server}")
    return ExitCode.OK


def cmd_batch_run(args):
    from esrt.cobol.batch import run_batch
    from esrt.cobol.esfh_build import esfh_cobc_args, esfh_library
    from esrt.node.definitions import server_definition
    from esrt.paths import RegionPaths, program_environment
    home = _home(args)
    definition = server_definition(args.server, home)
    paths = RegionPaths(definition, home).create()
    environ = program_environment(definition, paths)
    if args.commit_interval and definition.get("store"):
        raise CommandError(f"{args.server} keeps its files in PostgreSQL, where a batch run "
                           "commits each operation: --commit-interval is for the Berkeley DB "
                           "environment only; run it without", ExitCode.USAGE)
    if args.commit_interval == "single":
        mode = "in one transaction, committed if it ends with exit code 0"
    elif args.commit_interval:
        mode = f"committing every {args.commit_interval} writes"
    else:
        mode = "committing each operation"
    environ["ESFH_COMMIT_INTERVAL"] = args.commit_interval or "0"
    say(f"running {args.program} for {args.server} in {paths.data}, {mode}")
    code = run_batch(args.program, environ, cwd=str(paths.data),
                     build_dir=str(paths.root / "batch"), args=args.args,
                     extra_args=esfh_cobc_args(esfh_library()))
    if code != 0:
        raise CommandError(f"{args.program} ended with exit code {code}", code=ExitCode.ERROR)
    say(f"{args.program} completed (exit code 0)")
    return ExitCode.OK


def format_reply_line(reply):
    """The original client's line: every output value in mapping order, space-separated."""
    return " ".join(str(value) for value in reply.values())


def cmd_call(args):
    from esrt.client import Client
    from esrt.mapping import jsonio
    try:
        params = jsonio.loads(args.data.encode()) if args.data else {}
    except ValueError as exc:
        raise CommandError(f"--data is not valid JSON: {exc}", ExitCode.USAGE) from None
    failures = 0
    try:
        urls = args.url if len(args.url) > 1 else args.url[0]
        client = Client(urls, timeout=args.timeout, **tls_client_files(args))
    except ValueError as exc:
        raise CommandError(str(exc), ExitCode.USAGE) from None
    with client:
        for _ in range(args.repeat):
            reply = client.call(args.service, params, retry_for=args.retry)
            say(jsonio.dumps(reply).decode() if args.json else format_reply_line(reply))
            if reply.return_code:
                failures += 1
                print(f"warning: {args.service} ended with RETURN-CODE {reply.return_code}",
                      file=sys.stderr)
    return ExitCode.ERROR if failures else ExitCode.OK


# --- parser ------------------------------------------------------------------------------------

def _commit_interval(text):
    if text == "single" or (text.isdigit() and int(text) > 0):
        return text
    raise argparse.ArgumentTypeError(f"{text!r}: give a number of writes (e.g. 1000) or 'single'")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="esrt", description="esrt: run GnuCOBOL programs as transactional network services")
    parser.add_argument("--home", help="node home (default $ESRT_HOME or ~/.esrt)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    mfds = commands.add_parser("mfds", help="run, start or stop the node's directory server")
    mfds.add_argument("--listen", default="127.0.0.1:8686", help="ip:port (default 127.0.0.1:8686)")
    group = mfds.add_mutually_exclusive_group()
    group.add_argument("--daemon", action="store_true",
                       help="start in the background, return once it answers")
    group.add_argument("--stop", action="store_true", help="stop the running mfds")
    group.add_argument("--status", action="store_true", help="say whether mfds runs")
    from esrt.mfds.server import add_tls_arguments
    add_tls_arguments(mfds)
    mfds.set_defaults(func=cmd_mfds)
    mfds_actions = mfds.add_subparsers(dest="mfds_command", metavar="ACTION")
    from esrt.cli.user_cmd import add_user_commands
    add_user_commands(mfds_actions)

    server = commands.add_parser("server", help="define and inspect servers (regions)")
    server_commands = server.add_subparsers(dest="server_command", metavar="ACTION")
    server_commands.required = True
    from esrt.cli.server_cmd import add_definition_commands
    add_definition_commands(server_commands)
    server_commands.add_parser("list", help="list servers").set_defaults(func=cmd_server_list)
    from esrt.cli.service_cmd import add_service_commands
    add_service_commands(mfds_actions, server_commands)
    for name, func, text in (("show", cmd_server_show, "show a server as JSON"),
                             ("delete", cmd_server_delete, "delete a stopped server"),
                             ("status", cmd_server_status,
                              "exit 0 running, 7 stopped, 1 failed (OCF codes)")):
        sub = server_commands.add_parser(name, help=text)
        sub.add_argument("name")
        sub.set_defaults(func=func)

    imtk = commands.add_parser("imtk", help="interface mapping: defmap, generate")
    imtk_commands = imtk.add_subparsers(dest="imtk_command", metavar="ACTION")
    imtk_commands.required = True
    defmap = imtk_commands.add_parser("defmap", help="write SERVICE.mapping.json from COBOL source")
    defmap.add_argument("--src", action="append", required=True, help="COBOL source, repeatable")
    defmap.add_argument("--service", required=True)
    defmap.add_argument("--copy-dir", action="append", default=[], help="copybook directory")
    defmap.add_argument("--output-dir", default=".")
    defmap.set_defaults(func=cmd_imtk_defmap)
    generate = imtk_commands.add_parser("generate", help="compile and package SERVICE.car")
    generate.add_argument("--service", required=True)
    generate.add_argument("--mapping", help="mapping file (default SERVICE.mapping.json)")
    generate.add_argument("--copy-dir", action="append", default=[])
    generate.add_argument("--output-dir", default=".")
    generate.set_defaults(func=cmd_imtk_generate)

    casstart = commands.add_parser("casstart", help="start a server")
    casstart.add_argument("-r", "--region", required=True)
    casstart.add_argument("-w", "--wait", action="store_true",
                          help="return once every listener started")
    casstart.add_argument("--timeout", type=float, default=60.0)
    casstart.add_argument("--foreground", action="store_true",
                          help="become the region process instead of starting it in the "
                          "background (for systemd: see `esrt server install-service`)")
    casstart.set_defaults(func=cmd_casstart)
    from esrt.cli.ha_cmd import add_ha_commands
    add_ha_commands(commands, server_commands, casstart)
    casstop = commands.add_parser("casstop", help="stop a server")
    casstop.add_argument("-r", "--region", required=True)
    casstop.add_argument("-f", "--force", action="store_true", help="kill the server's processes")
    casstop.add_argument("--timeout", type=float, default=30.0)
    casstop.set_defaults(func=cmd_casstop)

    deploy = commands.add_parser("deploy", help="install a .car package on a server")
    deploy.add_argument("package")
    deploy.add_argument("--server", required=True)
    deploy.set_defaults(func=cmd_deploy)

    batch = commands.add_parser("batch", help="batch programs")
    batch_commands = batch.add_subparsers(dest="batch_command", metavar="ACTION")
    batch_commands.required = True
    run = batch_commands.add_parser("run", help="run a batch program with the server's environment")
    run.add_argument("program", help="COBOL source (compiled first) or executable")
    run.add_argument("--server", required=True)
    run.add_argument("--commit-interval", type=_commit_interval, default=None,
                     metavar="N|single", help="commit every N writes, or 'single': the whole "
                     "run is one transaction (default: each operation commits)")
    run.add_argument("args", nargs="*")
    run.set_defaults(func=cmd_batch_run)

    from esrt.cli.file_cmd import add_file_commands
    add_file_commands(commands)
    from esrt.cli.bench_cmd import add_bench_command
    add_bench_command(commands)
    from esrt.cli.doctor_cmd import add_doctor_command
    add_doctor_command(commands)

    call = commands.add_parser("call", help="call a service")
    call.add_argument("service", help="PACKAGE.PROGRAM, e.g. srv01.CBLAPP01")
    call.add_argument("--url", required=True, action="append",
                      help="listener URL, e.g. http://127.0.0.1:9003, https://HOST:PORT, "
                      "esrt://HOST:PORT or esrts://HOST:PORT; repeat it for regions serving "
                      "the same files: a call goes to the next when one fails, with the same "
                      "idempotency key")
    add_tls_client_options(call)
    call.add_argument("--repeat", type=int, default=1)
    call.add_argument("--data", help="JSON object of input parameters")
    call.add_argument("--json", action="store_true", help="print each reply as JSON")
    call.add_argument("--timeout", type=float, default=60.0)
    call.add_argument("--retry", type=float, metavar="SECONDS",
                      help="retry connection failures and 503s for this long, with an "
                      "idempotency key so that no call runs twice")
    call.set_defaults(func=cmd_call)
    return parser


def known_errors():
    """Exceptions that are the user's to fix: printed as one message, no traceback."""
    from esrt.client import ConnectionFailed, ServiceError
    from esrt.cobol.compile import CompileError
    from esrt.mapping.car import CarError
    from esrt.mapping.parser import MappingError
    from esrt.mfds.daemon import MfdsStartError
    from esrt.node.control import RegionControlError
    from esrt.node.mfds_client import MfdsError, MfdsUnavailable
    from esrt.settings import SettingError
    return (CommandError, ConnectionFailed, ServiceError, CarError, MfdsError, MfdsUnavailable,
            RegionControlError, RegionFileError, SettingError, MappingError, CompileError,
            MfdsStartError, FileNotFoundError, ValueError)


def main(argv=None, prog="esrt"):
    parser = build_parser()
    parser.prog = prog
    args = parser.parse_args(argv)
    if args.home:
        os.environ["ESRT_HOME"] = os.path.abspath(args.home)
    try:
        return int(args.func(args))
    except known_errors() as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        if isinstance(exc, CommandError):
            return int(exc.code)
        if isinstance(exc, RegionFileError):
            # OCF codes: the cluster tells a bad file (6) and the wrong file (2) from a failure.
            return int(exc.exit_code)
        return ExitCode.ERROR
    except KeyboardInterrupt:
        return 130


def run():
    """Console-script entry point of `esrt`."""
    sys.exit(main())

"""CLI commands for high availability and portable regions.

`esrt mdump [host] [server]`, `esrt ha install-agent`, `esrt ha check-config FILE`,
`esrt ha monitor NAME` (the OCF agent's monitor: status plus a health probe),
`esrt server export NAME`, `esrt server import FILE` and `casstart --config FILE`, which starts a
region from a region file (the whole definition) with nothing in the node's repository, so that
definition, packages, data and logs can all live on a cluster's shared disk.
"""

import json

from esrt.cli.errors import CommandError
from esrt.states import ExitCode


def _say(message):
    print(message, flush=True)


def _home(args):
    from esrt.home import Home
    return Home(getattr(args, "home", None))


# --- server export / import -------------------------------------------------------------------

def cmd_server_export(args):
    """Print server NAME's definition as a region file (JSON) on stdout."""
    from esrt.node.definitions import server_definition
    from esrt.settings import validate_server
    definition = server_definition(args.name, _home(args))
    print(json.dumps(validate_server(definition), indent=2, sort_keys=True), flush=True)
    return ExitCode.OK


def cmd_server_import(args):
    """Create the server of a region file in mfds, or update it when it exists."""
    from esrt.node.definitions import read_region_file, save_definition
    from esrt.node.mfds_client import MfdsClient
    definition = read_region_file(args.file)
    done = save_definition(MfdsClient.from_home(_home(args)), definition)
    _say(f"server {definition['name']} {done} from {args.file}")
    return ExitCode.OK


# --- mdump, ha ----------------------------------------------------------------------------------

def cmd_mdump(args):
    from esrt.ha import mdump
    return mdump.run(args)


def cmd_ha_install_agent(args):
    from esrt.ha.agent import AgentInstallError, install_agents
    try:
        region, follow = install_agents(args.root)
    except AgentInstallError as exc:
        raise CommandError(str(exc)) from None
    _say(f"OCF agents installed as {region} and {follow}: use ocf:esrt:region with parameters "
         "config=REGION_FILE and home=ESRT_HOME; ocf:esrt:pgfollow (pgdata=DATA_DIRECTORY) as a "
         "clone ordered after the floating address of a PostgreSQL primary")
    return ExitCode.OK


def cmd_ha_check_config(args):
    """Validate a region file; print the server name alone (the OCF agent reads it)."""
    from esrt.node.definitions import read_region_file
    print(read_region_file(args.file)["name"], flush=True)
    return ExitCode.OK


def cmd_ha_monitor(args):
    """`server status` (0 running, 7 stopped, 1 failed), then, when running, a health probe:
    a region that does not answer within --probe-timeout is reported failed (exit 1). A
    standby region that is standing by is running (0), or stopped (7) with --require-active."""
    from esrt.region.monitor import monitor_region
    code, lines = monitor_region(_home(args), args.name, args.probe_timeout,
                                 args.require_active)
    for line in lines:
        _say(line)
    return code


def cmd_server_switch(args):
    """`esrt server activate|deactivate NAME`: signal a running standby region and wait until
    its status says it switched. Exit 0 done, 7 the region is not running, 1 it failed."""
    from esrt.region.monitor import switch_region
    code, text = switch_region(_home(args), args.name, args.action == "activate", args.timeout)
    _say(text)
    return code


def add_ha_commands(commands, server_commands, casstart_parser):
    """Add mdump, ha, server export/import and casstart --config to the esrt parser."""
    from esrt.ha import mdump
    from esrt.ha.agent import DEFAULT_OCF_RESOURCE_DIR

    dump = commands.add_parser("mdump", help="print the directory (servers, listeners, status) "
                               "as text for HA monitor scripts")
    mdump.add_arguments(dump)
    dump.set_defaults(func=cmd_mdump)

    ha = commands.add_parser("ha", help="cluster integration: install the OCF agents")
    ha_commands = ha.add_subparsers(dest="ha_command", metavar="ACTION")
    ha_commands.required = True
    install = ha_commands.add_parser("install-agent", help="install the ocf:esrt:region "
                                     "and ocf:esrt:pgfollow agents")
    install.add_argument("--root", default=DEFAULT_OCF_RESOURCE_DIR,
                         help=f"OCF resource.d directory (default {DEFAULT_OCF_RESOURCE_DIR})")
    install.set_defaults(func=cmd_ha_install_agent)
    check = ha_commands.add_parser("check-config", help="validate a region file, print its name")
    check.add_argument("file")
    check.set_defaults(func=cmd_ha_check_config)

    monitor = ha_commands.add_parser("monitor", help="OCF-style status of a region (0 running, "
                                     "7 stopped, 1 failed) including a health probe")
    monitor.add_argument("name")
    monitor.add_argument("--probe-timeout", type=float, default=5.0, metavar="SECONDS",
                         help="fail a running region that does not answer GET /health within "
                              "this time (default 5; 0: no probe)")
    monitor.add_argument("--require-active", action="store_true",
                         help="report a standby region that is standing by as stopped (7): "
                              "the monitor of its activation")
    monitor.set_defaults(func=cmd_ha_monitor)

    for action, text in (("activate", "make a running standby region take over: open its "
                                       "data environment and start its SEPs"),
                         ("deactivate", "put an active standby region back to standing by: "
                                        "stop its SEPs and close its data environment")):
        switch = server_commands.add_parser(action, help=text)
        switch.add_argument("name")
        switch.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                            help="how long to wait for the switch (default 60)")
        switch.set_defaults(func=cmd_server_switch, action=action)

    export = server_commands.add_parser("export", help="print a server's definition as a "
                                        "region file (JSON)")
    export.add_argument("name")
    export.set_defaults(func=cmd_server_export)
    load = server_commands.add_parser("import", help="create or update a server from a "
                                      "region file")
    load.add_argument("file")
    load.set_defaults(func=cmd_server_import)

    casstart_parser.add_argument("--config", metavar="FILE",
                                 help="start from this region file (no definition needed in "
                                      "the repository)")

"""`esrt mfds install-service` and `esrt server install-service NAME`: systemd units that keep
mfds and the node's servers running across reboots (esrt.node.units)."""

import getpass
import os
import pwd

from esrt.home import Home
from esrt.states import ExitCode


def _say(message):
    print(message, flush=True)


def _install(args, units, instance):
    from esrt.node import units as systemd
    unit_dir = args.unit_dir
    for name, text in units.items():
        _say(f"wrote {systemd.write_unit(unit_dir, name, text)}")
    user_manager = systemd.is_user_unit_dir(unit_dir)
    systemctl = "systemctl --user" if user_manager else "systemctl"
    if not args.enable:
        _say(f"start it now and at every boot: {systemctl} daemon-reload && "
             f"{systemctl} enable --now {instance}")
        return ExitCode.OK
    if not systemd.systemd_runs():
        from esrt.cli.errors import CommandError
        raise CommandError(f"systemd does not run on this machine, so {instance} cannot be "
                           "enabled; the unit files are written for when it does")
    ok, said = systemd.enable(instance, user_manager)
    if not ok:
        from esrt.cli.errors import CommandError
        raise CommandError(f"{systemctl} could not enable {instance}: {said}; see "
                           f"`{systemctl} status {instance}` and `journalctl -u {instance}`")
    _say(f"{instance} enabled and started; `{systemctl} status {instance}` shows it")
    return ExitCode.OK


def _user(args, home):
    """Who the unit runs as: --user, else the owner of ESRT_HOME (a root shell installing the
    unit of someone's node must not make root own its files), else whoever installs it. None:
    root (no User= line)."""
    if args.run_as:
        return None if args.run_as == "root" else args.run_as
    try:
        owner = pwd.getpwuid(home.root.stat().st_uid).pw_name
    except (OSError, KeyError):
        owner = os.environ.get("SUDO_USER") or getpass.getuser()
    return None if owner == "root" else owner


def cmd_mfds_install_service(args):
    from esrt.node import units as systemd
    if bool(args.tls_cert) != bool(args.tls_key):
        from esrt.cli.errors import CommandError
        raise CommandError("give --tls-cert and --tls-key together (a certificate and its key)")
    home = Home()
    text = systemd.mfds_unit(home, args.service_listen, args.tls_cert, args.tls_key,
                             user=_user(args, home), unit_dir=args.unit_dir,
                             version=systemd.systemd_version())
    return _install(args, {systemd.MFDS_UNIT: text}, systemd.MFDS_UNIT)


def cmd_server_install_service(args):
    from esrt.node import units as systemd
    from esrt.node.mfds_client import MfdsClient, MfdsError, MfdsUnavailable
    from esrt.settings import Name
    home = Home()
    try:
        name = Name().check(args.name)
    except ValueError as exc:
        from esrt.cli.errors import CommandError
        raise CommandError(f"server name: {exc}") from None
    try:
        MfdsClient.from_home(home, timeout=10.0).get_server(name)
    except MfdsError as exc:
        from esrt.cli.errors import CommandError
        raise CommandError(f"{name}: {exc}; define it first (`esrt server create {name} ...`): "
                           "its unit starts it from the definition mfds holds") from None
    except MfdsUnavailable:
        _say(f"note: mfds does not answer, so whether {name} is defined was not checked; its "
             "unit starts it from the definition mfds holds")
    text = systemd.server_unit(home, user=_user(args, home), unit_dir=args.unit_dir,
                               version=systemd.systemd_version())
    return _install(args, {systemd.SERVER_TEMPLATE: text}, f"esrt-server@{name}.service")


def _common_options(parser):
    from esrt.node.units import SYSTEM_UNIT_DIR
    parser.add_argument("--unit-dir", default=str(SYSTEM_UNIT_DIR),
                        help=f"where to write the unit (default {SYSTEM_UNIT_DIR}; "
                        "~/.config/systemd/user for a user's own systemd, which starts it "
                        "at boot only with `loginctl enable-linger USER`)")
    parser.add_argument("--user", dest="run_as", metavar="USER",
                        help="run as this user (default: the owner of ESRT_HOME)")
    parser.add_argument("--enable", action="store_true",
                        help="also run systemctl daemon-reload and enable --now")


def add_service_commands(mfds_actions, server_actions):
    """`install-service` under `esrt mfds` and under `esrt server`."""
    mfds = mfds_actions.add_parser("install-service", help="write a systemd unit that runs "
                                   "mfds at boot (esrt-mfds.service)")
    mfds.add_argument("--listen", dest="service_listen", default="127.0.0.1:8686",
                      help="ip:port mfds listens on (default 127.0.0.1:8686)")
    mfds.add_argument("--tls-cert", metavar="FILE", help="serve https with this certificate")
    mfds.add_argument("--tls-key", metavar="FILE", help="the private key of --tls-cert")
    _common_options(mfds)
    mfds.set_defaults(func=cmd_mfds_install_service)
    server = server_actions.add_parser("install-service", help="write the systemd unit that "
                                       "runs server NAME at boot (esrt-server@NAME.service)")
    server.add_argument("name")
    _common_options(server)
    server.set_defaults(func=cmd_server_install_service)

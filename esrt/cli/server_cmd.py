"""`esrt server create` and `esrt server set`: every setting of esrt.settings, typed as text.

The flags of `create` and the keys of `set` come from SERVER_SETTINGS, so a new setting is
settable here the moment it is added there; the repository behind mfds validates the result.
"""

import argparse
import os

from esrt.settings import (SERVER_SETTING_NAMES, SERVER_SETTINGS, Flag, OptionalPath,
                           SettingError, server_setting)
from esrt.states import ExitCode


def _say(message):
    print(message, flush=True)


def _mfds():
    from esrt.node.mfds_client import MfdsClient
    return MfdsClient.from_home()


def _typed(setting, texts):
    """The clean value of `texts` typed on this machine's command line."""
    if isinstance(setting.kind, OptionalPath):
        # mfds runs elsewhere (another directory, maybe as a daemon): a relative path typed
        # here means a path relative to the user's directory, so it is made absolute here.
        texts = [os.path.abspath(text) if text.strip() else "" for text in texts]
    return setting.from_texts(texts)


def _shown(setting, value):
    return f"{setting.name}={', '.join(setting.to_texts(value)) or '(none)'}"


def cmd_server_create(args):
    """Define a server from the flags given; unset settings take their defaults."""
    definition = {"name": args.name}
    for setting in SERVER_SETTINGS:
        given = getattr(args, setting.name) if setting.flag else None
        if given is None:
            continue
        if isinstance(setting.kind, Flag):
            definition[setting.name] = given
        else:
            definition[setting.name] = _typed(setting, given if isinstance(given, list)
                                              else [given])
    clean = _mfds().create_server(definition).get("definition", definition)
    listeners = ", ".join(f"\"{each['name']}\"={each['address']}"
                          for each in clean.get("listeners", [])) or "none"
    _say(f"server {clean['name']} created: {clean.get('seps')} SEPs, listeners {listeners}")
    return ExitCode.OK


def parse_assignments(pairs):
    """Changes from KEY=VALUE texts; a list setting collects every pair naming it."""
    texts = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SettingError({pair: "must look like KEY=VALUE, e.g. seps=4 or "
                                      "\"listeners=Web Services=127.0.0.1:9003\""})
        setting = server_setting(key)
        if setting.name == "name":
            raise SettingError({"name": "a server's name cannot change: create a server "
                                        "with the new name instead"})
        if setting.name in texts and not setting.kind.repeatable:
            raise SettingError({setting.name: "given twice; give it once"})
        texts.setdefault(setting.name, []).append(value)
    return {name: _typed(server_setting(name), given) for name, given in texts.items()}


def cmd_server_set(args):
    """Change some settings of a defined server."""
    changes = parse_assignments(args.pairs)
    server = _mfds().update_server(args.name, changes)
    clean = server.get("definition", {})
    shown = " ".join(_shown(setting, clean.get(setting.name)) for setting in SERVER_SETTINGS
                     if setting.name in changes)
    _say(f"server {args.name}: {shown}")
    if server.get("mfServerStatus") not in (None, "Stopped"):
        _say(f"server {args.name} is {server['mfServerStatus']}: the changes take effect when "
             "it is next started")
    return ExitCode.OK


def _help(setting):
    text = setting.describe()
    if setting.default not in (None, "", [], {}):
        text += f" (default {', '.join(setting.to_texts(setting.default))})"
    return text.replace("%", "%%")


def add_definition_commands(server_commands):
    """Add `create` and `set` to the `esrt server` subparsers."""
    create = server_commands.add_parser("create", help="define a server in the repository")
    create.add_argument("name", help=_help(server_setting("name")))
    for setting in SERVER_SETTINGS:
        if not setting.flag:
            continue
        if isinstance(setting.kind, Flag):
            create.add_argument(setting.flag, dest=setting.name, default=None,
                                action=argparse.BooleanOptionalAction, help=_help(setting))
        elif setting.kind.repeatable:
            create.add_argument(setting.flag, dest=setting.name, action="append",
                                metavar=setting.kind.metavar,
                                help=_help(setting) + "; repeatable")
        else:
            create.add_argument(setting.flag, dest=setting.name, help=_help(setting),
                                metavar=setting.kind.metavar)
    create.set_defaults(func=cmd_server_create)

    change = server_commands.add_parser(
        "set", help="change settings of a server: KEY=VALUE ...",
        description="Change settings of a defined server. Keys: "
                    f"{', '.join(SERVER_SETTING_NAMES[1:])}. A list setting (listeners, env) "
                    "takes every pair naming it, and an empty value empties it; an empty "
                    "directory means the default.")
    change.add_argument("name")
    change.add_argument("pairs", nargs="+", metavar="KEY=VALUE")
    change.set_defaults(func=cmd_server_set)

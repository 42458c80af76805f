"""`esrt mfds user add|list|delete`: manage the accounts of the node's mfds.

The commands write the repository ($ESRT_HOME/repository.db) directly, so they work whether
mfds runs or not -- the first admin must be created before mfds may listen on a non-loopback
address. A running mfds sees changes at once (it reads accounts on every request).
"""

import getpass

from esrt.home import Home
from esrt.states import ExitCode


def _store(args):
    from esrt.mfds.users import UserStore
    home = Home(getattr(args, "home", None)).ensure()
    return home, UserStore(home.repository)


def _actor():
    try:
        return f"{getpass.getuser()} (cli)"
    except (KeyError, OSError):
        return "cli"


def _password(args):
    from esrt.mfds.users import UserError
    if args.password is not None:
        return args.password
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise UserError("the two passwords differ: nothing was changed")
    return first


def cmd_user_add(args):
    """Create an account."""
    from esrt.mfds.users import audit
    home, store = _store(args)
    try:
        store.add(args.name, _password(args), args.role)
    finally:
        store.close()
    audit(home, _actor(), "add user", args.name, "ok", f"role {args.role}")
    print(f"user {args.name} added with role {args.role} (ESRT_HOME={home.root})", flush=True)
    return ExitCode.OK


def cmd_user_list(args):
    """List the accounts."""
    home, store = _store(args)
    try:
        users = store.list()
    finally:
        store.close()
    if not users:
        print("no users: mfds is open to local users and listens on loopback only; add an "
              "admin with `esrt mfds user add NAME --password P --role admin`", flush=True)
    for user in users:
        print(f"{user['name']:<20} {user['role']:<9} created {user['created']}", flush=True)
    return ExitCode.OK


def cmd_user_delete(args):
    """Delete an account."""
    from esrt.mfds.users import audit
    home, store = _store(args)
    try:
        store.delete(args.name)
    finally:
        store.close()
    audit(home, _actor(), "delete user", args.name, "ok")
    print(f"user {args.name} deleted", flush=True)
    return ExitCode.OK


def add_user_commands(parent):
    """Add `user add|list|delete` under `parent`: the `esrt mfds` parser, or the subparsers
    action returned by its add_subparsers()."""
    from esrt.mfds.users import ROLES
    if hasattr(parent, "add_parser"):
        subparsers = parent
    else:
        subparsers = parent.add_subparsers(dest="mfds_command", metavar="ACTION")
    user = subparsers.add_parser("user", help="manage mfds accounts (admin, operator, readonly)")
    actions = user.add_subparsers(dest="user_command", metavar="ACTION")
    actions.required = True
    add = actions.add_parser("add", help="create an account")
    add.add_argument("name")
    add.add_argument("--password", help="the password (asked for when omitted)")
    add.add_argument("--role", required=True, choices=ROLES,
                     help="readonly: look; operator: also start/stop/deploy; admin: everything")
    add.set_defaults(func=cmd_user_add)
    actions.add_parser("list", help="list the accounts").set_defaults(func=cmd_user_list)
    delete = actions.add_parser("delete", help="delete an account")
    delete.add_argument("name")
    delete.set_defaults(func=cmd_user_delete)
    return user

"""`esrt mfds user add|list|delete`, `esrt mfds token create|list|revoke` and `esrt mfds rule
add|list|remove`: the accounts of the node's mfds, their API tokens and the rules saying who
may call which service (esrt.node.callers).

The commands write the repository ($ESRT_HOME/repository.db) directly, so they work whether
mfds runs or not -- the first admin must be created before mfds may listen on a non-loopback
address. A running mfds sees changes at once (it reads accounts on every request).
"""

import contextlib
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
    _add_token_commands(subparsers)
    _add_rule_commands(subparsers)
    return user


@contextlib.contextmanager
def _callers(args):
    """(home, the CallerStore of its repository), closed after the block."""
    from esrt.mfds.callers import CallerStore
    home = Home(getattr(args, "home", None)).ensure()
    store = CallerStore(home.repository)
    try:
        yield home, store
    finally:
        store.close()


def cmd_token_create(args):
    """Create an API token for an account; the token is the last line printed."""
    from esrt.mfds.users import audit
    with _callers(args) as (home, store):
        made = store.create_token(args.user, args.note)
    audit(home, _actor(), "create token", args.user, "ok", f"token {made['id']}")
    print(f"token {made['id']} created for {args.user}; it is shown only now, keep it secret "
          "and send it as `Authorization: Bearer TOKEN`:", flush=True)
    print(made["token"], flush=True)
    return ExitCode.OK


def cmd_token_list(args):
    """List the API tokens (never the tokens themselves)."""
    with _callers(args) as (_, store):
        tokens = store.list_tokens()
    if not tokens:
        print("no tokens: create one with `esrt mfds token create USER`", flush=True)
    for token in tokens:
        print(f"{token['id']}  {token['user']:<20} created {token['created']}"
              + (f"  {token['note']}" if token["note"] else ""), flush=True)
    return ExitCode.OK


def cmd_token_revoke(args):
    """Revoke an API token by its id."""
    from esrt.mfds.users import audit
    with _callers(args) as (home, store):
        owner = store.revoke_token(args.id)
    audit(home, _actor(), "revoke token", owner, "ok", f"token {args.id}")
    print(f"token {args.id} of {owner} revoked; regions refuse it within seconds", flush=True)
    return ExitCode.OK


def _add_token_commands(subparsers):
    token = subparsers.add_parser("token", help="API tokens for calling services")
    actions = token.add_subparsers(dest="token_command", metavar="ACTION")
    actions.required = True
    create = actions.add_parser("create", help="create a token for an account (printed once)")
    create.add_argument("user")
    create.add_argument("--note", default="", help="what the token is for")
    create.set_defaults(func=cmd_token_create)
    actions.add_parser("list", help="list the tokens").set_defaults(func=cmd_token_list)
    revoke = actions.add_parser("revoke", help="revoke a token")
    revoke.add_argument("id", help="the token's id (its first 8 hex digits after esrt_)")
    revoke.set_defaults(func=cmd_token_revoke)


def cmd_rule_add(args):
    """Let an account or a role call the services matching a pattern."""
    from esrt.mfds.users import audit
    with _callers(args) as (home, store):
        had_rules = bool(store.list_rules())
        rule = store.add_rule(args.subject, args.pattern)
    audit(home, _actor(), "add rule", rule["subject"], "ok", rule["pattern"])
    print(f"{rule['subject']} may call {rule['pattern']}", flush=True)
    if not had_rules:
        print("this is the first rule: from now on, a call that no rule allows is refused "
              "(403) on listeners that authenticate their callers", flush=True)
    return ExitCode.OK


def cmd_rule_list(args):
    """List the call rules."""
    with _callers(args) as (_, store):
        rules = store.list_rules()
    if not rules:
        print("no rules: every caller a listener authenticates may call every service; add "
              "one with `esrt mfds rule add USER_OR_ROLE PATTERN` to allow only what it says",
              flush=True)
    for rule in rules:
        print(f"{rule['subject']:<24} {rule['pattern']}", flush=True)
    return ExitCode.OK


def cmd_rule_remove(args):
    """Remove a call rule."""
    from esrt.mfds.users import audit
    with _callers(args) as (home, store):
        rule = store.remove_rule(args.subject, args.pattern)
    audit(home, _actor(), "remove rule", rule["subject"], "ok", rule["pattern"])
    print(f"{rule['subject']} may no longer call {rule['pattern']}", flush=True)
    return ExitCode.OK


def _add_rule_commands(subparsers):
    rule = subparsers.add_parser("rule", help="who may call which services")
    actions = rule.add_subparsers(dest="rule_command", metavar="ACTION")
    actions.required = True
    add = actions.add_parser("add", help="let an account or role call services matching a "
                             "pattern (srv01.*, *.CBLAPP01)")
    add.add_argument("subject", metavar="USER_OR_ROLE",
                     help="an account, a role (readonly, operator, admin), or user:NAME, "
                          "role:NAME")
    add.add_argument("pattern", help="PACKAGE.PROGRAM with * and ? wildcards")
    add.set_defaults(func=cmd_rule_add)
    actions.add_parser("list", help="list the rules").set_defaults(func=cmd_rule_list)
    remove = actions.add_parser("remove", help="remove a rule")
    remove.add_argument("subject", metavar="USER_OR_ROLE")
    remove.add_argument("pattern")
    remove.set_defaults(func=cmd_rule_remove)

"""The one error every `esrt` command may raise to report a failure to the user.

It has a module of its own so that each command module can raise it without importing the
parser (esrt.cli.main), which imports the command modules.
"""

import os

from esrt.states import ExitCode


class CommandError(Exception):
    """A failure to report to the user as one clear message (exit code `code`)."""

    def __init__(self, message, code=ExitCode.ERROR):
        super().__init__(message)
        self.code = code


def add_tls_client_options(parser):
    """--cacert, --cert and --key (curl's names) for a command that calls a listener."""
    parser.add_argument("--cacert", metavar="FILE",
                        help="PEM file of the CA that signed the listener's certificate (https://"
                        ", esrts://); default: the system's CAs")
    parser.add_argument("--cert", metavar="FILE",
                        help="client certificate (PEM) for a listener that asks for one")
    parser.add_argument("--key", metavar="FILE",
                        help="private key of --cert, when it is not in the same file")
    parser.add_argument("--token", default=os.environ.get("ESRT_TOKEN"),
                        help="API token for a listener with auth=token (default $ESRT_TOKEN)")
    parser.add_argument("--user", help="account name for a listener with auth=basic")
    parser.add_argument("--password", default=os.environ.get("ESRT_PASSWORD"),
                        help="the account's password (default $ESRT_PASSWORD)")


def tls_client_files(args):
    """The TLS files and credentials of Client (esrt.client) from the options above; none for
    a URL without TLS, which refuses files with a message saying so."""
    files = {"ca_file": args.cacert, "cert_file": args.cert, "key_file": args.key,
             "token": args.token, "user": args.user,
             "password": args.password if args.user else None}
    return {name: value for name, value in files.items() if value}

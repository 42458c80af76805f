"""The one error every `esrt` command may raise to report a failure to the user.

It has a module of its own so that each command module can raise it without importing the
parser (esrt.cli.main), which imports the command modules.
"""

from esrt.states import ExitCode


class CommandError(Exception):
    """A failure to report to the user as one clear message (exit code `code`)."""

    def __init__(self, message, code=ExitCode.ERROR):
        super().__init__(message)
        self.code = code

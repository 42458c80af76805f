"""`python -m esrt` is the `esrt` command."""

from esrt.cli.main import run

run()

"""`python -m esrt.mfds [--listen IP:PORT] [--home DIR]`: run the node's mfds in the foreground."""

import sys

from esrt.mfds.server import main

if __name__ == "__main__":
    sys.exit(main())

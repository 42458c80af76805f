"""`python -m esrt.isam.recovery DATA_DIR`: ESFH's recovery of a data environment, in a process
of its own.

The region recovers its environment in a child process: recovery rebuilds the shared regions,
files mapped into memory, and on a full or failing data disk a process touching such a page
can die of SIGBUS. That must cost a failed recovery (tried again later), never the region.
With --fresh the old region files are removed unread first: an earlier recovery died reading
them (a failing disk can leave them garbage). Exit status: 0 recovered; BUSY when another
process uses the environment (not recovered, nothing wrong); 1 for any other failure, with
ESFH's message on stderr.
"""

import sys

BUSY = 3


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    fresh = argv[:1] == ["--fresh"]
    if fresh:
        argv = argv[1:]
    if len(argv) != 1:
        print("usage: python -m esrt.isam.recovery [--fresh] DATA_DIR", file=sys.stderr)
        return 2
    from esrt.cobol.esfh_build import esfh_library
    from esrt.isam import EBUSY, Esfh, EsfhError
    try:
        Esfh(esfh_library()).recover(argv[0], fresh=fresh)
    except EsfhError as exc:
        print(exc, file=sys.stderr)
        return BUSY if exc.code == EBUSY else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

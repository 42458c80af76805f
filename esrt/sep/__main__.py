"""Entry point of a SEP process: `python -m esrt.sep --server NAME --sep N --deploy DIR`."""

import argparse
import os
import sys

from esrt.states import ExitCode


def main(argv=None):
    parser = argparse.ArgumentParser(prog="esrt-sep")
    parser.add_argument("--server", required=True)
    parser.add_argument("--sep", type=int, required=True)
    parser.add_argument("--deploy", required=True)
    args = parser.parse_args(argv)
    try:
        import setproctitle
        setproctitle.setproctitle(f"{args.server} SEP {args.sep:04d}")
    except ImportError:
        pass
    # Replies go to fd 4 and requests come on fd 3; stdout and stderr stay free for COBOL
    # DISPLAY output and libcob's messages, which the region copies into console.log.
    try:
        requests = os.fdopen(3, "rb")
        replies = os.fdopen(4, "wb")
    except OSError as exc:
        print(f"SEP {args.sep:04d}: started without its request/reply pipes ({exc}); "
              "SEPs are started by their region", file=sys.stderr)
        return ExitCode.BOOT_FAILED
    from esrt.cobol.runtime import CobolRuntime
    from esrt.sep.worker import serve
    runtime = CobolRuntime()
    try:
        runtime.init()
    except Exception as exc:
        print(f"SEP {args.sep:04d}: cannot initialise libcob: {exc}", file=sys.stderr)
        return ExitCode.BOOT_FAILED
    serve(runtime, args.deploy, requests, replies)
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())

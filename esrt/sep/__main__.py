"""Entry point of a SEP process: `python -m esrt.sep --server NAME --sep N --deploy DIR`."""

import argparse
import os
import sys

from esrt.states import ExitCode


def schedule_as_batch(sep):
    """SCHED_BATCH for this process: woken by a call, it waits for the region to yield its
    core rather than preempting it. The region then hands over whole batches instead of one
    call per wake-up; on a core of its own a SEP runs at once either way. Any process may
    choose SCHED_BATCH; where the kernel refuses, the SEP runs as a normal one."""
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except (AttributeError, OSError) as exc:
        print(f"SEP {sep:04d}: runs with normal scheduling: SCHED_BATCH was refused ({exc})",
              file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="esrt-sep")
    parser.add_argument("--server", required=True)
    parser.add_argument("--sep", type=int, required=True)
    parser.add_argument("--deploy", required=True)
    parser.add_argument("--data", help="data directory holding the Berkeley DB environment "
                        "(default $ESRT_DATA_DIR); none: files are not transactional")
    parser.add_argument("--max-procs", type=int, default=16,
                        help="processes that may share the environment (for failchk)")
    parser.add_argument("--request-timeout", type=float, default=0,
                        help="seconds a call of a batch may run before this SEP is ended "
                        "(SIGALRM); 0: only the region's timeout applies")
    parser.add_argument("--checkpoint-interval", type=float, default=0,
                        help="seconds between checkpoints of the environment by this SEP "
                        "(0: none; the region asks one SEP to)")
    parser.add_argument("--keep-logs", action="store_true",
                        help="checkpoints keep the log files recovery no longer needs")
    parser.add_argument("--scheduling", choices=("batch", "normal"), default="normal",
                        help="the kernel's scheduling policy for this SEP (the server "
                        "setting sep_scheduling)")
    args = parser.parse_args(argv)
    try:
        import setproctitle
        setproctitle.setproctitle(f"{args.server} SEP {args.sep:04d}")
    except ImportError:
        pass
    if args.scheduling == "batch":
        schedule_as_batch(args.sep)
    # Replies go to fd 4 and requests come on fd 3; stdout and stderr stay free for COBOL
    # DISPLAY output and libcob's messages, which the region copies into console.log.
    try:
        # Unbuffered: the cancel check polls the descriptor, which must not hide bytes that a
        # buffered reader already pulled in.
        requests = os.fdopen(3, "rb", buffering=0)
        replies = os.fdopen(4, "wb")
    except OSError as exc:
        print(f"SEP {args.sep:04d}: started without its request/reply pipes ({exc}); "
              "SEPs are started by their region", file=sys.stderr)
        return ExitCode.BOOT_FAILED
    from esrt.cobol.runtime import CobolRuntime
    from esrt.sep.worker import Transactions, serve
    data_dir = args.data or os.environ.get("ESRT_DATA_DIR")
    transactions = None
    try:
        if data_dir:
            # Loaded (RTLD_GLOBAL) before any module: programs compiled with -fcallfh=ESFH
            # resolve the ESFH symbol when they are loaded.
            from esrt.cobol.esfh_build import esfh_library
            from esrt.isam import Esfh
            esfh = Esfh(esfh_library())
            store = os.environ.get("ESFH_STORE")
            if store:
                # Files in PostgreSQL: each commit is durable when it returns, and the
                # server keeps its own log.
                esfh.store_open(store)
                transactions = Transactions(esfh)
            else:
                esfh.env_open(data_dir, os.environ.get("ESFH_DURABILITY", "sync"),
                              args.max_procs)
                # The SEP answers a batch only after one log flush (esrt.sep.worker.serve).
                esfh.set_group_commit(True)
                transactions = Transactions(esfh, checkpoint_interval=args.checkpoint_interval,
                                            remove_logs=not args.keep_logs)
        runtime = CobolRuntime()
        runtime.init()
    except Exception as exc:  # noqa: BLE001 - whatever stops the boot is reported, with BOOT_FAILED
        print(f"SEP {args.sep:04d}: cannot start: {exc}", file=sys.stderr)
        return ExitCode.BOOT_FAILED
    serve(runtime, args.deploy, requests, replies, transactions, args.request_timeout)
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())

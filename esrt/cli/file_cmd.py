"""`esrt file ...`: create, load, unload, dump, count and verify ESFH indexed files, checkpoint
and recover a region's data environment (the library is esrt.isam.files).

Every command works on a running region's files: the tools join its environment and use
transactions. The environment is the server's data directory (--server S, read from mfds) or
a directory given with --data-dir (default: $ESRT_DATA_DIR).
"""

import argparse
import os
import sys

from esrt.states import ExitCode


def _say(message):
    print(message, flush=True)


def _data_dir(args):
    """The environment home from --data-dir, --server (mfds) or $ESRT_DATA_DIR."""
    from esrt.isam.files import IsamFileError
    if args.data_dir:
        return os.path.abspath(args.data_dir)
    if args.server:
        from esrt.home import Home
        from esrt.node.definitions import server_definition
        from esrt.paths import RegionPaths
        home = Home(getattr(args, "home", None))
        return str(RegionPaths(server_definition(args.server, home), home).data)
    if os.environ.get("ESRT_DATA_DIR"):
        return os.environ["ESRT_DATA_DIR"]
    raise IsamFileError("say which data environment to use: --server NAME (a defined server) "
                        "or --data-dir DIRECTORY (or set ESRT_DATA_DIR)")


def _layout(args, env=None):
    """The file's description from the options, else from its sidecar (or None)."""
    from esrt.isam.layout import FileLayout, layout_from_options
    layout = layout_from_options(
        layout=getattr(args, "layout", None), key=getattr(args, "key", None),
        alt_keys=getattr(args, "alt_key", None) or (),
        record_length=getattr(args, "record_length", None),
        key_offset=getattr(args, "key_offset", None),
        key_length=getattr(args, "key_length", None),
        copy_dirs=getattr(args, "copy_dir", None) or (), record=getattr(args, "record", None))
    if layout is not None and not layout.keys and env is not None:
        # Only a copybook given: keep the keys of the stored description.
        stored = FileLayout.load(env.path_of(args.file))
        if stored is not None:
            layout.keys = stored.keys
            layout._check()
    return layout


def cmd_create(args):
    from esrt.isam.files import DataEnv, create_file
    with DataEnv(_data_dir(args)) as env:
        path = create_file(env, args.file, _layout(args), adopt=args.adopt)
        layout = env.open_file(args.file).layout
    keys = ", ".join("%s%s" % (k.name, " (duplicates)" if k.dups else "") for k in layout.keys)
    _say("%s %s: %d-byte records, keys %s" % ("described" if args.adopt else "created", path,
                                             layout.record_length, keys))
    return ExitCode.OK


def cmd_load(args):
    from esrt.isam.files import DataEnv, read_input
    with DataEnv(_data_dir(args)) as env:
        handle = env.open_file(args.file, _layout(args, env))
        count = handle.load(read_input(args.input, handle.layout, args.format),
                            batch_size=args.batch_size)
    _say("loaded %d records into %s" % (count, handle.path))
    return ExitCode.OK


def cmd_unload(args):
    from esrt.isam.files import DataEnv, write_output
    with DataEnv(_data_dir(args)) as env:
        handle = env.open_file(args.file, _layout(args, env))
        temporary = "%s.tmp%d" % (args.output, os.getpid())
        try:
            with open(temporary, "wb") as out:
                count = write_output(out, handle.records(), handle.layout, args.format)
            os.replace(temporary, args.output)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    _say("unloaded %d records from %s to %s" % (count, handle.path, args.output))
    return ExitCode.OK


def cmd_dump(args):
    from esrt.isam.files import DataEnv, hex_dump, record_json
    with DataEnv(_data_dir(args)) as env:
        handle = env.open_file(args.file, _layout(args, env))
        layout = handle.layout
        readable = layout is not None and layout.item is not None and not args.hex
        if layout is None and handle.dbs[1:]:
            print("note: %s has alternate keys but no description; records may end with "
                  "4-byte sequence numbers (pass --key/--alt-key or --record-length)"
                  % handle.path, file=sys.stderr)
        for key, record in handle.records(args.limit):
            if readable:
                print(record_json(layout, record))
            else:
                print("\n".join(hex_dump(key, record)))
    sys.stdout.flush()
    return ExitCode.OK


def cmd_count(args):
    from esrt.isam.files import DataEnv
    with DataEnv(_data_dir(args)) as env:
        count = env.open_file(args.file, _layout(args, env)).count()
    _say(str(count))
    return ExitCode.OK


def cmd_verify(args):
    from esrt.isam.files import DataEnv
    with DataEnv(_data_dir(args)) as env:
        handle = env.open_file(args.file, _layout(args, env))
        problems = handle.verify()
        count = handle.count()
        indexes = len(handle.dbs) - 1
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print("%s: %d problem(s) found; rebuild the file (unload, create, load) or restore it"
              % (handle.path, len(problems)), file=sys.stderr)
        return ExitCode.ERROR
    _say("%s: OK (%d records, %d alternate key databases consistent)"
         % (handle.path, count, indexes))
    return ExitCode.OK


def cmd_checkpoint(args):
    from esrt.isam.files import checkpoint_environment
    home = _data_dir(args)
    checkpoint_environment(home)
    _say("checkpoint written in %s" % home)
    return ExitCode.OK


def cmd_recover(args):
    from esrt.isam.files import recover_environment
    home = _data_dir(args)
    recover_environment(home)
    _say("recovered the data environment in %s" % home)
    return ExitCode.OK


def _env_options(parser):
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--server", help="use this server's data directory (needs mfds)")
    group.add_argument("--data-dir", help="use this data directory (no mfds needed)")


def _layout_options(parser, keys=True):
    parser.add_argument("--layout", metavar="COPYBOOK", help="copybook with the 01 record")
    parser.add_argument("--record", metavar="NAME", help="which 01 record of the copybook")
    parser.add_argument("--copy-dir", action="append", metavar="DIR",
                        help="where COPY statements in the copybook find other copybooks")
    parser.add_argument("--record-length", type=int, metavar="N")
    if keys:
        parser.add_argument("--key", metavar="NAME", help="prime key field (or OFFSET+LENGTH)")
        parser.add_argument("--alt-key", action="append", metavar="NAME[:dups]",
                            help="alternate key, in the order of the program's ALTERNATE "
                                 "RECORD KEY clauses; ':dups' for WITH DUPLICATES")
        parser.add_argument("--key-offset", type=int, metavar="O")
        parser.add_argument("--key-length", type=int, metavar="L")


def add_file_commands(subparsers):
    """Add `file` with its actions to an argparse subparsers object; each action sets
    ``func`` (taking the parsed args, returning an ExitCode)."""
    parser = subparsers.add_parser("file", help="indexed files: create, load, unload, dump, "
                                                "count, verify; checkpoint, recover")
    actions = parser.add_subparsers(dest="file_command", metavar="ACTION")
    actions.required = True

    create = actions.add_parser("create", help="create an empty indexed file and its "
                                               "description FILE.esrt.json")
    create.add_argument("file", help="file name (relative names are in the data directory)")
    _layout_options(create)
    create.add_argument("--adopt", action="store_true",
                        help="the file exists (written by COBOL): only write its description")
    _env_options(create)
    create.set_defaults(func=cmd_create)

    load = actions.add_parser("load", help="add records from JSON lines or fixed records")
    load.add_argument("file")
    load.add_argument("input")
    load.add_argument("--format", choices=("jsonl", "fixed"), default="jsonl")
    load.add_argument("--batch-size", type=int, default=1000,
                      help="records per transaction (default 1000)")
    _layout_options(load)
    _env_options(load)
    load.set_defaults(func=cmd_load)

    unload = actions.add_parser("unload", help="write every record to a file")
    unload.add_argument("file")
    unload.add_argument("output")
    unload.add_argument("--format", choices=("jsonl", "fixed"), default="jsonl")
    _layout_options(unload)
    _env_options(unload)
    unload.set_defaults(func=cmd_unload)

    dump = actions.add_parser("dump", help="print records (JSON with a layout, else hex)")
    dump.add_argument("file")
    dump.add_argument("--limit", type=int, metavar="N")
    dump.add_argument("--hex", action="store_true", help="hex and text even with a layout")
    _layout_options(dump)
    _env_options(dump)
    dump.set_defaults(func=cmd_dump)

    count = actions.add_parser("count", help="print the number of records")
    count.add_argument("file")
    _env_options(count)
    count.set_defaults(func=cmd_count)

    verify = actions.add_parser("verify", help="check the file and its alternate key indexes")
    verify.add_argument("file")
    _layout_options(verify)
    _env_options(verify)
    verify.set_defaults(func=cmd_verify)

    checkpoint = actions.add_parser("checkpoint", help="checkpoint the data environment")
    _env_options(checkpoint)
    checkpoint.set_defaults(func=cmd_checkpoint)

    recover = actions.add_parser("recover", help="recover the data environment (the region "
                                                 "and every program using it must be stopped)")
    _env_options(recover)
    recover.set_defaults(func=cmd_recover)
    return parser


def main(argv=None):
    """Run `file ...` alone (python -m esrt.cli.file_cmd); the esrt command hooks
    add_file_commands into its own parser instead."""
    parser = argparse.ArgumentParser(prog="esrt")
    parser.add_argument("--home", help=argparse.SUPPRESS)
    add_file_commands(parser.add_subparsers(dest="command", metavar="COMMAND"))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.error("give a command: file ACTION ...")
    try:
        return int(args.func(args))
    except (ValueError, OSError) as exc:
        # IsamFileError, LayoutError, MappingError and FieldValueError are ValueErrors.
        print("esrt file: error: %s" % exc, file=sys.stderr)
        return int(ExitCode.ERROR)


if __name__ == "__main__":
    sys.exit(main())

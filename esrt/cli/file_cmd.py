"""`esrt file ...`: create, load, unload, dump, count and verify ESFH indexed files, copy files
between stores, checkpoint and recover a region's data environment (the library is
esrt.isam.files, esrt.isam.pgstore and esrt.isam.copy).

Every command works on a running region's files: the tools join its store and use
transactions. The store is the server's (--server S, read from mfds: its data directory, or
its PostgreSQL store), a data directory given with --data-dir, or a PostgreSQL store given
with --store (default: $ESFH_STORE, else $ESRT_DATA_DIR).
"""

import argparse
import os
import sys

from esrt.states import ExitCode


def _say(message):
    print(message, flush=True)


def _where(args, data_dir="data_dir", store="store", server="server"):
    """("store", connection string) or ("data", directory) named by the options: --store,
    --data-dir or --server (its store, else its data directory, from mfds), else
    $ESFH_STORE or $ESRT_DATA_DIR."""
    from esrt.isam.files import IsamFileError
    if getattr(args, store, None):
        return "store", getattr(args, store)
    if getattr(args, data_dir, None):
        return "data", os.path.abspath(getattr(args, data_dir))
    if getattr(args, server, None):
        from esrt.home import Home
        from esrt.node.definitions import server_definition
        from esrt.paths import RegionPaths
        home = Home(getattr(args, "home", None))
        definition = server_definition(getattr(args, server), home)
        if definition.get("store"):
            return "store", definition["store"]
        return "data", str(RegionPaths(definition, home).data)
    if os.environ.get("ESFH_STORE"):
        return "store", os.environ["ESFH_STORE"]
    if os.environ.get("ESRT_DATA_DIR"):
        return "data", os.environ["ESRT_DATA_DIR"]
    raise IsamFileError("say which files to use: --server NAME (a defined server), "
                        "--data-dir DIRECTORY or --store CONNINFO (or set ESRT_DATA_DIR or "
                        "ESFH_STORE)")


def _open(where):
    """The DataEnv or PgStore of a _where answer."""
    kind, place = where
    if kind == "store":
        from esrt.isam.pgstore import PgStore
        return PgStore(place)
    from esrt.isam.files import DataEnv
    return DataEnv(place)


def _environment(args):
    """The store the command works on (see _where)."""
    return _open(_where(args))


def _data_dir(args):
    """The data directory of a command for Berkeley DB environments only."""
    from esrt.isam.files import IsamFileError
    kind, place = _where(args)
    if kind == "store":
        raise IsamFileError("the files are in a PostgreSQL store, which needs no checkpoint or "
                            "recovery from esrt: the database server does both")
    return place


def _layout(args, env=None):
    """The file's description from the options, else from its sidecar (or None)."""
    from esrt.isam.layout import layout_from_options
    layout = layout_from_options(
        layout=getattr(args, "layout", None), key=getattr(args, "key", None),
        alt_keys=getattr(args, "alt_key", None) or (),
        record_length=getattr(args, "record_length", None),
        key_offset=getattr(args, "key_offset", None),
        key_length=getattr(args, "key_length", None),
        copy_dirs=getattr(args, "copy_dir", None) or (), record=getattr(args, "record", None))
    if layout is not None and not layout.keys and env is not None:
        # Only a copybook given: keep the keys of the stored description.
        stored = env.description(args.file)
        if stored is not None:
            layout.keys = stored.keys
            layout._check()
    return layout


def cmd_create(args):
    from esrt.isam.files import create_file
    with _environment(args) as env:
        path = create_file(env, args.file, _layout(args), adopt=args.adopt)
        layout = env.open_file(args.file).layout
    keys = ", ".join("%s%s" % (k.name, " (duplicates)" if k.dups else "") for k in layout.keys)
    _say("%s %s: %d-byte records, keys %s" % ("described" if args.adopt else "created", path,
                                             layout.record_length, keys))
    return ExitCode.OK


def cmd_load(args):
    from esrt.isam.files import read_input
    with _environment(args) as env:
        handle = env.open_file(args.file, _layout(args, env))
        count = handle.load(read_input(args.input, handle.layout, args.format),
                            batch_size=args.batch_size)
    _say("loaded %d records into %s" % (count, handle.path))
    return ExitCode.OK


def cmd_unload(args):
    from esrt.isam.files import write_output
    with _environment(args) as env:
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
    from esrt.isam.files import hex_dump, record_json
    with _environment(args) as env:
        handle = env.open_file(args.file, _layout(args, env))
        layout = handle.layout
        readable = layout is not None and layout.item is not None and not args.hex
        if layout is None and handle.alternate_count:
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
    with _environment(args) as env:
        count = env.open_file(args.file, _layout(args, env)).count()
    _say(str(count))
    return ExitCode.OK


def cmd_verify(args):
    with _environment(args) as env:
        handle = env.open_file(args.file, _layout(args, env))
        problems = handle.verify()
        count = handle.count()
        indexes = handle.alternate_count
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print("%s: %d problem(s) found; rebuild the file (unload, create, load) or restore it"
              % (handle.path, len(problems)), file=sys.stderr)
        return ExitCode.ERROR
    _say("%s: OK (%d records, %d alternate key indexes consistent)"
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


def cmd_copy(args):
    from esrt.isam.copy import copy_store
    from esrt.isam.files import IsamFileError
    source_where = _where(args)
    target_where = _where(args, data_dir="to_data_dir", store="to_store", server="to_server")
    if source_where == target_where:
        raise IsamFileError("the copy would go to where the files are; give another "
                            "--to-store, --to-data-dir or --to-server")
    with _open(source_where) as source, _open(target_where) as target:
        copy_store(source, target, args.files, replace=args.replace, report=_say)
    return ExitCode.OK


def _env_options(parser):
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--server", help="use this server's files (its data directory or its "
                                        "PostgreSQL store; needs mfds)")
    group.add_argument("--data-dir", help="use this data directory (no mfds needed)")
    group.add_argument("--store", metavar="CONNINFO",
                       help="use this PostgreSQL store (a libpq connection string)")


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
                                                "count, verify, copy; checkpoint, recover")
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

    copy = actions.add_parser("copy", help="copy files (default: all of them, with the stored "
                                           "replies) to another store and check the copy")
    copy.add_argument("files", nargs="*", metavar="FILE", help="files to copy (default: all)")
    _env_options(copy)
    target = copy.add_mutually_exclusive_group(required=True)
    target.add_argument("--to-store", metavar="CONNINFO",
                        help="copy into this PostgreSQL store")
    target.add_argument("--to-data-dir", metavar="DIR",
                        help="copy into the Berkeley DB environment of this directory")
    target.add_argument("--to-server", metavar="NAME",
                        help="copy into this server's store (needs mfds)")
    copy.add_argument("--replace", action="store_true",
                      help="overwrite files that already hold records there")
    copy.set_defaults(func=cmd_copy)

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

"""Copying ESFH files between stores: a Berkeley DB data environment (esrt.isam.files) and a
PostgreSQL store (esrt.isam.pgstore), either way, and checking each copy.

A copy takes what the source stores as it is: every record's prime key and stored value (the
record with its duplicate sequence numbers, or a RELATIVE slot) and every alternate index
entry, so no key layout is needed, and duplicates keep the order they were written in. Both
stores order keys alike, so a file and its copy have the same content digest
(StoredFile.digest); the copy is checked by comparing the record counts and the digests of
both sides, the source's taken again after the copy: a source that changed meanwhile (a region
still writing) fails the check instead of leaving a silently different copy.

The file descriptions (`esrt file create`) and the stored replies (idempotency keys) go along,
so that a retried call finds its reply in the new store.
"""

from esrt.isam.files import IsamFileError


class CopyMismatch(IsamFileError):
    """The copy does not hold what the source holds (now)."""


def copy_file(source, target, name, replace=False):
    """Copy file ``name`` from store ``source`` to store ``target`` (DataEnv or PgStore) and
    check it; returns (records, digest)."""
    original = source.open_file(name, layout=None)
    description = source.description(name)
    if target.exists(name):
        existing = target.open_file(name, layout=None)
        if existing.count() and not replace:
            raise IsamFileError(f"{name} already holds records in the {target.home}; copy "
                                "it again with --replace to overwrite them, or remove it "
                                "there first")
        if existing.alternate_count != original.alternate_count:
            raise IsamFileError(f"{name} has {existing.alternate_count} alternate keys in "
                                f"the {target.home} and {original.alternate_count} in the "
                                f"{source.home}; remove it from the {target.home} first")
    copy = _create_like(target, name, original)
    entries = [list(original.index_entries(index))
               for index in range(1, original.alternate_count + 1)]
    copy.replace_content(original.items(), entries)
    if description is not None:
        target.save_description(name, description)
    copied = copy.digest()
    now = original.digest()
    if copied != now:
        raise CopyMismatch(f"{name}: the copy in the {target.home} holds {copied[0]} records "
                           f"(digest {copied[1][:16]}), the {source.home} {now[0]} (digest "
                           f"{now[1][:16]}); the source changed while it was copied: stop "
                           "the server's regions and copy again with --replace")
    return copied


def _create_like(target, name, original):
    """The target's file with the source's number of alternate keys."""
    from esrt.isam.layout import FileLayout, Key
    # Only the number of alternate keys shapes the stored file; placeholders stand for them.
    keys = [Key("prime", 0, 1)] + [Key(f"alternate{index}", 0, 1)
                                   for index in range(1, original.alternate_count + 1)]
    return target.open_file(name, FileLayout("indexed", None, keys), create=True)


def copy_replies(source, target):
    """Copy the stored replies; returns how many."""
    replies = source.replies()
    target.replace_replies(replies)
    if sorted(target.replies()) != sorted(replies):
        raise CopyMismatch(f"the stored replies in the {target.home} differ from the "
                           f"{source.home}'s after the copy; stop the server's regions and "
                           "copy again with --replace")
    return len(replies)


def copy_store(source, target, names=None, replace=False, report=lambda line: None):
    """Copy files ``names`` (default: every file, and then the stored replies) from
    ``source`` to ``target``; ``report`` gets a line per file. Returns the number of files."""
    everything = not names
    nested = source.nested_files() if everything and hasattr(source, "nested_files") else []
    if nested and hasattr(target, "conninfo"):
        raise IsamFileError(f"{', '.join(nested)}: in a subdirectory of the data directory, "
                            "which a PostgreSQL store does not keep (a table per file of the "
                            "directory itself); move them up and rename them in the programs' "
                            "ASSIGN clauses, or copy the other files by name")
    names = names or source.file_names()
    if everything and not names:
        raise IsamFileError(f"the {source.home} holds no files to copy")
    for name in names:
        records, digest = copy_file(source, target, name, replace)
        report(f"copied {name}: {records} record{'s' if records != 1 else ''}, "
               f"sha256 {digest[:16]}... the same in both stores")
    if everything:
        count = copy_replies(source, target)
        report(f"copied {count} stored repl{'ies' if count != 1 else 'y'} (idempotency keys)")
    return len(names)

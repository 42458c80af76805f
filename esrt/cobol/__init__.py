"""GnuCOBOL for esrt: compile programs (cobc), call them in-process (libcob via cffi), run batch.

`compile` wraps cobc, `runtime` loads and calls compiled modules, `batch` runs batch programs as
subprocesses; `bindings` holds the C declarations and is used by `runtime` only.
"""

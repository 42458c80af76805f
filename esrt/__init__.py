"""esrt: an Enterprise Server runtime that runs GnuCOBOL programs as transactional services."""

__version__ = "0.1.0"

"""The `esrt` command and its MF-style aliases. Parsing only: the work is in library modules."""

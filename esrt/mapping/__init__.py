"""Interface mapping: COBOL LINKAGE SECTIONs as JSON services (``imtkmake`` and the codec).

* :mod:`esrt.mapping.parser` reads COBOL sources into a mapping document and reads/writes
  mapping files (``defmap``, ``write_mapping``, ``load_mapping``).
* :mod:`esrt.mapping.codec` converts request/reply JSON values to and from LINKAGE buffers.
* :mod:`esrt.mapping.jsonio` parses and writes JSON with exact decimals.
"""

from esrt.mapping.codec import FieldValueError, ProgramCodec
from esrt.mapping.model import MappingError
from esrt.mapping.parser import defmap, entry_symbol, load_mapping, write_mapping

__all__ = ["FieldValueError", "MappingError", "ProgramCodec", "defmap", "entry_symbol",
           "load_mapping", "write_mapping"]

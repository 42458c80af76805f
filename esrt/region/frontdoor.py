"""The one import site of the front door's common case (an HTTP request read and answered,
a call of either listener admitted): esrt._frontdoor (C) when it is built and ESRT_PUREPYTHON
is not set, its twin esrt.region._pyfrontdoor otherwise.

See esrt/region/_pyfrontdoor.py for what read_request, response and admit do; both return the
same results whichever is loaded (tests/unit/test_frontdoor_twins.py).
"""

from esrt import native
from esrt.region import _pyfrontdoor

_c = native.load("_frontdoor")
implementation = _c if _c is not None else _pyfrontdoor
read_request = implementation.read_request
response = implementation.response
admit = implementation.admit

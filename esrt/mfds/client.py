"""The client of mfds's JSON API, under the name scripts have used since esrt began.

It lives in esrt.node.mfds_client, below both mfds and the region (which must not import each
other). This name stays because it is the documented way for a user's own scripts to talk to
mfds (`from esrt.mfds.client import MfdsClient`); esrt's own code imports the new home.
"""

from esrt.node.mfds_client import (  # noqa: F401 - re-exported for users' scripts (above)
    TOKEN_FILE, TOKEN_HEADER, MfdsClient, MfdsError, MfdsUnavailable, read_node_token)

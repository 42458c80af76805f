"""The region: one Twisted process per server, with its listeners, dispatcher and SEPs."""

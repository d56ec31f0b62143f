"""ActivityPub for fedipress, sans-I/O: documents, WebFinger, signatures and policies.

See README.md in this folder: nothing here touches files, sockets, SQL or the clock.
Import the submodules directly (`fedipress.activitypub.documents`, `.webfinger`, `.site`, …).
"""

__all__: list[str] = []

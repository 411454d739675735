"""The model store: catalog, resolving, downloading, verifying, importing (GUI-free).

Engines call ``resolve(model_id)`` for the path to load; see ``store.ModelStore`` for
the rest and ``models/README.md`` for the catalog.
"""

from voicebot.models.errors import (
                                    ChecksumMismatchError,
                                    DownloadCancelledError,
                                    DownloadError,
                                    ModelCorruptError,
                                    ModelError,
                                    ModelNotInstalledError,
                                    UnknownModelError,
)
from voicebot.models.store import ModelStore, resolve

__all__ = [
    "ChecksumMismatchError", "DownloadCancelledError", "DownloadError", "ModelCorruptError",
    "ModelError", "ModelNotInstalledError", "ModelStore", "UnknownModelError", "resolve",
]

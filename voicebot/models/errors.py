"""Errors of the model store.

Every message says what happened and what to do next, because these reach the user
through the CLI, the doctor and the app's error dialogs unchanged.
"""

from __future__ import annotations


class ModelError(Exception):
    """Base class: anything the model store cannot do."""


class UnknownModelError(ModelError, KeyError):
    """The id is neither in the catalog nor an imported model."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class ModelNotInstalledError(ModelError):
    """The model is known but its files are not on this machine."""


class ModelCorruptError(ModelError):
    """The model's files are present but incomplete or do not match their hashes."""


class DownloadError(ModelError):
    """A download failed (network, server, disk); the previous copy is untouched."""


class ChecksumMismatchError(DownloadError):
    """What arrived is not what the catalog pins; it was discarded."""


class DownloadCancelledError(DownloadError):
    """The user cancelled; the partial file is kept so the next attempt resumes."""


class UnsafeArchiveError(ModelError):
    """An archive tries to write outside its folder (``../``, absolute paths, links)."""


class InvalidModelError(ModelError):
    """A folder does not have the files a model of its kind needs."""


class ConversionError(ModelError):
    """A one-time conversion (for example GGUF to safetensors) failed."""


def not_installed_message(model_id: str, detail: str = "") -> str:
    prefix = f"model '{model_id}' is not installed"
    return f"{prefix} ({detail}); run: voicebot models download {model_id}" if detail \
        else f"{prefix}; run: voicebot models download {model_id}"

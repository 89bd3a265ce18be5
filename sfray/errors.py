"""User-facing errors.

Library code raises :class:`SfrayError` (or a subclass) for anything a user can fix: a missing
asset, a malformed file, a config typo. The CLI prints the message on one line and exits 2, so the
message must name the file or key and say what was expected.
"""

from __future__ import annotations


class SfrayError(Exception):
    """An error caused by the user's input, with a message that names the culprit and the fix."""


class ConfigError(SfrayError):
    """A config key is unknown, has the wrong type, or a value is out of range."""


class AssetError(SfrayError):
    """A model file, checkpoint or dataset file is missing or not in the expected format."""


class UnsafePickleError(AssetError):
    """A pickle asked for a global outside the allow-list; nothing was executed."""

"""File-level helpers shared by every package: atomic writes (``atomic``), the restricted unpickler
(``restricted_pickle``), paths from untrusted data and user-named files (``paths``), the writer lock
(``lock``), free disk space (``space``) and file digests (``digest``); docs/reliability.md."""

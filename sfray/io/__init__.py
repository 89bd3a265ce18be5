"""File-level helpers shared by every package: atomic writes (``atomic``), the restricted unpickler
(``restricted_pickle``), paths from untrusted data and user-named files (``paths``), the writer lock
(``lock``) and free disk space (``space``); docs/reliability.md."""

"""sfray: annotated synthetic face datasets from controllable 3D-aware generators, on Ray."""

__version__ = "0.1.0"

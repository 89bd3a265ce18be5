"""Image generators behind one protocol (``sfray.generators.base.Generator``)."""

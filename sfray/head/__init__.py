"""Parametric head models with FLAME's interface: the FLAME loader and the procedural head."""

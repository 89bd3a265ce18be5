"""Cameras, projection and rasterization in plain PyTorch (DESIGN.md §4 conventions)."""

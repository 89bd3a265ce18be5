"""Annotations from the head mesh: landmarks, segmentation, depth, alignment, quality."""

"""A landmark detector (``quality.detector``) that fails on purpose: a bug inside a worker."""

from __future__ import annotations


def explode(images):  # noqa: ANN001, ANN201 - the detector contract: uint8 images in
    raise RuntimeError("the detector crashed on purpose")

"""Cameras, projection and rasterization in plain PyTorch (docs/conventions.md).

Modules: ``camera`` (25-number labels, EG3D focal formula, look-at orbit, world -> pixels),
``camera_sampling`` (labels from uniform variates for the ``paper``/``release``/``custom``
presets), ``projection`` (camera space -> screen space), ``rasterizer`` (the pure-PyTorch
rasterizer and ``get_rasterizer``), ``pytorch3d_backend`` (optional, same interface).
"""

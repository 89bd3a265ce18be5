"""Networks: Stage I's UNet encoder and heads, stacked-hourglass keypoint head and multi-task model;
Stage II's label-finetuning nets (``sfray.models.labelnet``).

    model = build_model("tiny")                   # MODEL_SIZES: tiny | paper | release
    out = model(images)                           # images (B, 3, H, W) in [0, 1]
    save_model(model, "run/model"); load_model("run/model", expected_size="tiny")
"""

from sfray.models.io import load_model, save_model
from sfray.models.multitask import FEATURES, HEATMAPS, MODEL_SIZES, ModelSpec, MultiTaskModel, build_model

__all__ = ["FEATURES", "HEATMAPS", "MODEL_SIZES", "ModelSpec", "MultiTaskModel", "build_model", "load_model",
           "save_model"]

"""Training: the generic loop, the task interface, Stage I's task, augmentations, checkpoints, reports.

    report = train_stage1(cfg)                          # runner=local, plain torch
    model, cfg = load_stage1_model("outputs/stage1")    # a frozen trained model, by path alone
"""

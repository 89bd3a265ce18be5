"""Training: the generic loop, the task interface, Stage I's and Stage II's tasks, augmentations,
checkpoints, reports.

    report = train_stage1(cfg)                          # runner=local, plain torch
    model, cfg = load_stage1_model("outputs/stage1")    # a frozen trained model, by path alone
    report = run_finetune(finetune_cfg)                 # Stage II (sfray.train.stage2), runner=local
"""

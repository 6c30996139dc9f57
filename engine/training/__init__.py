"""Training CMDSR and its conditioning-off baseline (``cmdsr train``, the app's Training tab,
the GPU pair trainer). Imports the core and ``engine.inference`` (the damage readout, CPU
capabilities), never the CLI or the GUI.

- ``config``: ``TrainConfig`` (hyper-parameters, presets) and ``TrainProgress``
- ``model_init``: the starting network (identity / bicubic init, ``init_from``)
- ``optimisers``: Adam on each part, per-layer step sizes, learning-rate schedules
- ``losses``: task contrastive losses, the (bicubic-weighted) L1
- ``damage_readout``: training the damage readout beside the ConditionNet
- ``batches``: tasks and per-step batches on the CPU (``TaskBatches``, ``make_loader``)
- ``damage_fit``: fitting a damage head or a condition map to a trained, frozen model
- ``device_data``: training batches made on the device (``pair``, ``condition``)
- ``device_damage``: JPEG, resizes and a camera's noise made with torch ops for those batches
- ``step``: one training iteration (``train_step``), device and autocast
- ``validation``: PSNR-Y / SSIM-Y on fixed validation photos
- ``run_folder``: the files a run writes (``RunWriter``) and reads back
- ``loop``: ``train``, the loop with checkpoints, resume and Cancel
- ``condition``: the condition stage (the ConditionNet and readout trained first)
- ``pair``: CMDSR and the baseline on the same device-made batches
  (``python -m engine.training.pair``)
"""

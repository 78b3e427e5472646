"""Training on Lightning: the system (LightningModule), the data module, callbacks, and ``train(cfg)``."""

"""Training: configs, on-the-fly synthesized batches, losses and the accelerate loop."""

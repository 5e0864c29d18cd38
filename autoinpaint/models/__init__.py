"""Models: the family registry, checkpoints, hub rules, devices and the one store of loaded models."""

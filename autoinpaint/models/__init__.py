"""Where models come from and where they are kept: the family registry and ``auto`` (registry.py),
checkpoint files (checkpoints.py), the Hugging Face cache rules (hub.py), weight-file probes
(weight_files.py), devices and precision (device.py), autoinpaint's folders (paths.py), the SAM
embedding cache (embedding_cache.py) and the one store of loaded models (store.py)."""

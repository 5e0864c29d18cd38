"""LaMa with random weights, built from spandrel's architecture (the full big-lama graph: spandrel's
loader builds only that configuration) and saved in every format the loader reads, so the tests load
them through the very code path real ``big-lama`` files take."""
from __future__ import annotations

import sys
import types
from pathlib import Path

MISSING_MODULE = "autoinpaint_test_absent_config"  # stands for OmegaConf, not installed at load time


def build_lama(seed: int = 0):
    """spandrel's ``LaMa(in_nc=4, out_nc=3)`` (big-lama's shapes) with random weights and random
    batch-norm statistics (so a loader that dropped buffers would change the output), in eval mode."""
    import torch
    from spandrel.architectures.LaMa import LaMa

    torch.manual_seed(seed)
    model = LaMa(in_nc=4, out_nc=3).eval()
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0, 0.05)
            elif name.endswith("running_var"):
                buf.uniform_(0.8, 1.25)
    return model


def save_safetensors(model, path: Path, prefix: str = "model.model.") -> Path:
    """spandrel's key layout (``model.model.*``), or LaMa's own (``prefix="generator.model."``)."""
    from safetensors.torch import save_file

    state = {prefix + k.removeprefix("model.model."): v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path))
    return path


def save_state_dict(model, path: Path) -> Path:
    """A plain ``torch.save`` state dict: readable with ``weights_only=True``."""
    import torch

    torch.save(model.state_dict(), path)
    return path


def save_lightning(model, path: Path) -> Path:
    """A checkpoint laid out like LaMa's Lightning ``best.ckpt``: ``state_dict`` with ``generator.*``,
    discriminator and perceptual-loss tensors, and a training config pickled as an object of a class
    that is not installed when the file is read (OmegaConf's ``DictConfig`` in the real file), so
    reading it needs full unpickling."""
    import torch

    module = types.ModuleType(MISSING_MODULE)

    class DictConfig:
        def __init__(self, content):
            self.content = content

    DictConfig.__module__, DictConfig.__qualname__ = MISSING_MODULE, "DictConfig"
    module.DictConfig = DictConfig
    sys.modules[MISSING_MODULE] = module
    try:
        state = {"generator." + k.removeprefix("model."): v for k, v in model.state_dict().items()}
        state["discriminator.model0.0.weight"] = torch.randn(64, 3, 4, 4)
        state["loss_resnet_pl.impl.conv1.weight"] = torch.randn(64, 3, 7, 7)
        torch.save({"epoch": 39, "global_step": 1_000_000, "pytorch-lightning_version": "1.2.9",
                    "state_dict": state, "hyper_parameters": DictConfig({"generator": {"ngf": 64}})}, path)
    finally:
        del sys.modules[MISSING_MODULE]
    return path


def save_torchscript(model, path: Path) -> Path:
    """A ``torch.jit.trace`` archive of the whole network, like IOPaint's ``big-lama.pt``."""
    import torch

    image, mask = torch.rand(1, 3, 16, 16), torch.zeros(1, 1, 16, 16)
    with torch.no_grad():
        traced = torch.jit.trace(model, (image, mask), check_trace=False)
    traced.save(str(path))
    return path

"""Tiny SAM checkpoints for the tests, built from ``segment_anything.modeling`` and saved as
``.pth`` state dicts, so they load through the same code path as the published checkpoints; and a
spy on the decoder calls of any SAM segmenter."""
from __future__ import annotations

from pathlib import Path

TINY = dict(img_size=64, patch_size=8, embed_dim=32, depth=2, num_heads=2, window_size=4,
            global_attn_indexes=(1,), prompt_embed_dim=32, mask_in_chans=8, decoder_depth=1,
            decoder_mlp_dim=64, iou_head_depth=2, iou_head_hidden_dim=32)


def build_sam_model(img_size=1024, patch_size=16, embed_dim=768, depth=12, num_heads=12,
                    window_size=14, global_attn_indexes=(2, 5, 8, 11), prompt_embed_dim=256,
                    mask_in_chans=16, decoder_depth=2, decoder_mlp_dim=2048, iou_head_depth=3,
                    iou_head_hidden_dim=256, seed=0):
    """A randomly initialised Sam; the defaults are the vit_b architecture of ``build_sam``."""
    from functools import partial

    import torch
    from segment_anything.modeling import (ImageEncoderViT, MaskDecoder, PromptEncoder, Sam,
                                           TwoWayTransformer)

    torch.manual_seed(seed)
    grid = img_size // patch_size
    return Sam(
        image_encoder=ImageEncoderViT(
            img_size=img_size, patch_size=patch_size, embed_dim=embed_dim, depth=depth,
            num_heads=num_heads, mlp_ratio=4, out_chans=prompt_embed_dim, qkv_bias=True,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True,
            window_size=window_size, global_attn_indexes=global_attn_indexes),
        prompt_encoder=PromptEncoder(
            embed_dim=prompt_embed_dim, image_embedding_size=(grid, grid),
            input_image_size=(img_size, img_size), mask_in_chans=mask_in_chans),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=decoder_depth, embedding_dim=prompt_embed_dim,
                                          mlp_dim=decoder_mlp_dim, num_heads=8),
            transformer_dim=prompt_embed_dim, iou_head_depth=iou_head_depth,
            iou_head_hidden_dim=iou_head_hidden_dim),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375]).eval()


def save_sam_checkpoint(path: Path, tiny: bool = True, **arch) -> Path:
    """Build a SAM (:data:`TINY` overridden by ``arch``, or vit_b's ``arch`` when not ``tiny``)
    and save its state dict to ``path``."""
    import torch

    model = build_sam_model(**({**TINY, **arch} if tiny else arch))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path


def record_decodes(seg, monkeypatch) -> list:
    """Every decoder call's outputs (logits, IoU) of ``seg`` (a SAM segmenter of any family)."""
    outputs = []
    original = seg._decode

    def spy(*args):
        out = original(*args)
        outputs.append(out)
        return out

    monkeypatch.setattr(seg, "_decode", spy)
    return outputs


def count_predict_calls(seg, monkeypatch) -> list:
    """Record every decoder call of ``seg`` (a SAM segmenter of any family): the padded point batch
    B×N×2, boxes B×4, mask input B×1×h×w and the multimask flag."""
    calls = []
    original = seg._decode

    def spy(*args):
        points, _, boxes, multimask, mask_input = args[-6:-1]  # (…, mask_input, whole)
        n = max(len(c) for c in points)
        calls.append({"coords": (len(points), n, 2) if n else None,
                      "boxes": None if boxes is None else tuple(boxes.shape),
                      "mask_input": None if mask_input is None else tuple(mask_input.shape),
                      "multimask": multimask})
        return original(*args)

    monkeypatch.setattr(seg, "_decode", spy)
    return calls


def save_scene(folder: Path):
    """A 120×90 PNG in ``folder``: a blue rectangle at (30, 20)-(90, 70) on a light background, mild
    noise. Returns (path, H×W×3 uint8 pixels)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(1)
    img = np.full((90, 120, 3), 200, np.uint8)
    img[20:70, 30:90] = (40, 90, 160)
    img = np.clip(img + rng.integers(0, 20, img.shape), 0, 255).astype(np.uint8)
    path = Path(folder) / "scene.png"
    Image.fromarray(img).save(path)
    return path, img


def assert_same_mask(got, logits, size, crop=None, square=None) -> None:
    """``got`` (H×W bool) is the union of ``logits`` (B×h×w) > 0 after PyTorch's full bilinear interpolation
    (``Sam.postprocess_masks`` for SAM 1, ``square`` given; ``Sam2ImageProcessor.post_process_masks`` for
    SAM 2), but for pixels whose interpolated logit is within float rounding of 0 (|value| ≤ 1e-5, at most
    one pixel in 10⁵): the upscaling may take OpenCV's resize, the same weights in another order."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(logits)[:, None]
    if square:
        t = F.interpolate(t, (square, square), mode="bilinear", align_corners=False)[..., :crop[0], :crop[1]]
    values = F.interpolate(t, size, mode="bilinear", align_corners=False)[:, 0].numpy()
    assert got.shape == tuple(size) and got.dtype == bool
    differ = got != (values > 0).any(0)
    if differ.any():
        closest = np.abs(values).min(0)
        assert closest[differ].max() <= 1e-5 and differ.mean() <= 1e-5, (int(differ.sum()), closest[differ].max())

"""Tiny transformers SAM models for the tests (SAM 2.1, SAM, SAM-HQ, EdgeTAM), built from the library's config
classes with random weights and written with ``save_pretrained`` (safetensors) beside their image
processor, so they load through the same code path as the published checkpoints. SAM 2 is saved as
a ``Sam2VideoModel`` (``model_type`` ``sam2_video``), as the published ``facebook/sam2.1-hiera-*``
checkpoints are, and loads as the image model. EdgeTAM keeps its published image encoder (timm's
RepViT-M1, built with ``pretrained=False``: no download) on a 128-pixel input, with a tiny decoder."""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

FAMILIES = ("sam2", "sam", "sam-hq", "edgetam")
REPVIT = {"architecture": "repvit_m1",  # EdgeTAM's encoder, as transformers' EdgeTAM conversion names it
          "model_args": {"in_chans": 3, "features_only": True, "out_indices": [0, 1, 2, 3]}}


def tiny_config(family: str):
    """A small config of ``family``: 128-pixel input for SAM 2 (Hiera, 4 stages) and EdgeTAM (RepViT-M1),
    64 for SAM/SAM-HQ."""
    import transformers as tf

    if family == "edgetam":
        side = 128
        # the backbone config is explicit: EdgeTamVisionConfig's own default misspells "architecture"
        vision = tf.EdgeTamVisionConfig(backbone_config=tf.TimmWrapperConfig(**REPVIT), fpn_hidden_size=32,
                                        backbone_feature_sizes=[[side // 4] * 2, [side // 8] * 2, [side // 16] * 2])
        return tf.EdgeTamConfig(
            vision_config=vision,
            prompt_encoder_config=dict(hidden_size=32, image_size=side, patch_size=16, mask_input_channels=8),
            mask_decoder_config=dict(hidden_size=32, mlp_dim=64, num_hidden_layers=1, num_attention_heads=2,
                                     iou_head_hidden_dim=32))
    if family == "sam2":
        side = 128
        hiera = tf.Sam2HieraDetConfig(
            hidden_size=16, num_attention_heads=1, image_size=[side, side], blocks_per_stage=[1, 1, 2, 1],
            embed_dim_per_stage=[16, 32, 64, 128], num_attention_heads_per_stage=[1, 1, 2, 2],
            window_size_per_stage=[4, 4, 4, 2], global_attention_blocks=[3],
            window_positional_embedding_background_size=[2, 2])
        vision = tf.Sam2VisionConfig(backbone_config=hiera, backbone_channel_list=[128, 64, 32, 16],
                                     backbone_feature_sizes=[[side // 4] * 2, [side // 8] * 2, [side // 16] * 2],
                                     fpn_hidden_size=32)
        return tf.Sam2VideoConfig(
            vision_config=vision, image_size=side,
            prompt_encoder_config=dict(hidden_size=32, image_size=side, patch_size=16, mask_input_channels=8),
            mask_decoder_config=dict(hidden_size=32, mlp_dim=64, num_hidden_layers=1, num_attention_heads=2,
                                     iou_head_hidden_dim=32),
            memory_attention_hidden_size=32, memory_attention_num_layers=1, memory_attention_feed_forward_hidden_size=32,
            memory_encoder_hidden_size=32, memory_encoder_output_channels=16, mask_downsampler_embed_dim=32,
            memory_fuser_embed_dim=32, memory_fuser_intermediate_dim=32, memory_fuser_num_layers=1)
    side, patch = 64, 8
    vision = dict(hidden_size=32, output_channels=32, num_hidden_layers=2, num_attention_heads=2, image_size=side,
                  patch_size=patch, window_size=4, global_attn_indexes=[1], mlp_dim=64, num_pos_feats=16)
    prompt = dict(hidden_size=32, image_size=side, patch_size=patch, mask_input_channels=8)
    decoder = dict(hidden_size=32, mlp_dim=64, num_hidden_layers=1, num_attention_heads=2, iou_head_hidden_dim=32)
    if family == "sam-hq":
        return tf.SamHQConfig(vision_config=tf.SamHQVisionConfig(**vision), prompt_encoder_config=prompt,
                              mask_decoder_config={**decoder, "vit_dim": 32})
    return tf.SamConfig(vision_config=tf.SamVisionConfig(**vision), prompt_encoder_config=prompt,
                        mask_decoder_config=decoder)


def save_tiny(family: str, folder: Path, seed: int = 0, processor: bool = True) -> Path:
    """Build a random tiny model of ``family`` and ``save_pretrained`` it (with its image processor)."""
    import torch
    import transformers as tf

    config = tiny_config(family)
    torch.manual_seed(seed)
    model_cls = {"sam2": tf.Sam2VideoModel, "sam": tf.SamModel, "sam-hq": tf.SamHQModel,
                 "edgetam": tf.EdgeTamModel}[family]
    model = model_cls(config).eval()
    for module in model.modules():  # torch's default init: transformers' is near zero, masks would be flat
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Embedding)):
            module.reset_parameters()
    folder = Path(folder)
    model.save_pretrained(folder)
    if processor:
        side = config.prompt_encoder_config.image_size
        if family in ("sam2", "edgetam"):
            tf.Sam2ImageProcessor(size={"height": side, "width": side}).save_pretrained(folder)
        else:
            tf.SamImageProcessor(size={"longest_edge": side}, pad_size={"height": side, "width": side}
                                 ).save_pretrained(folder)
    return folder


def install_in_hub_cache(folder: Path, hub_cache: Path, repo: str, commit: str = "0" * 40) -> Path:
    """Lay ``folder``'s files out as ``hf download REPO`` leaves them in the Hugging Face cache
    (``models--OWNER--NAME/blobs/<sha256>``, ``snapshots/<commit>/FILE`` symlinks, ``refs/main``).
    Returns the snapshot folder."""
    root = Path(hub_cache) / f"models--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / commit
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(commit)
    for path in Path(folder).iterdir():
        blob = root / "blobs" / hashlib.sha256(path.read_bytes()).hexdigest()
        shutil.copyfile(path, blob)
        os.symlink(os.path.relpath(blob, snapshot), snapshot / path.name)
    return snapshot


def sam_state_to_transformers(state: dict) -> dict:
    """A segment-anything state dict → ``SamModel``'s keys (the renaming of transformers'
    ``convert_sam_to_hf.py``, with MLPs of any depth)."""
    import re

    renames = [("image_encoder", "vision_encoder"), ("blocks", "layers"), ("patch_embed.proj", "patch_embed.projection"),
               (".norm", ".layer_norm"), ("neck.0", "neck.conv1"), ("neck.1", "neck.layer_norm1"),
               ("neck.2", "neck.conv2"), ("neck.3", "neck.layer_norm2"),
               ("mask_decoder.output_upscaling.0", "mask_decoder.upscale_conv1"),
               ("mask_decoder.output_upscaling.1", "mask_decoder.upscale_layer_norm"),
               ("mask_decoder.output_upscaling.3", "mask_decoder.upscale_conv2"),
               ("mask_downscaling.0", "mask_embed.conv1"), ("mask_downscaling.1", "mask_embed.layer_norm1"),
               ("mask_downscaling.3", "mask_embed.conv2"), ("mask_downscaling.4", "mask_embed.layer_norm2"),
               ("mask_downscaling.6", "mask_embed.conv3"), ("point_embeddings", "point_embed"),
               ("pe_layer.positional_encoding_gaussian_matrix", "shared_embedding.positional_embedding")]
    depth: dict[str, int] = {}
    for key in state:  # layers per MLP head (iou head, hypernetwork MLPs)
        m = re.match(r"(.*(?:iou_prediction_head|output_hypernetworks_mlps\.\d+))\.layers\.(\d+)\.", key)
        if m:
            depth[m.group(1)] = max(depth.get(m.group(1), 0), int(m.group(2)) + 1)
    out = {}
    for key, value in state.items():
        if key in ("pixel_mean", "pixel_std"):
            continue
        m = re.match(r"(.*(?:iou_prediction_head|output_hypernetworks_mlps\.\d+))\.layers\.(\d+)\.(.*)", key)
        if m:
            i, n = int(m.group(2)), depth[m.group(1)]
            part = "proj_in" if i == 0 else "proj_out" if i == n - 1 else f"layers.{i - 1}"
            key = f"{m.group(1)}.{part}.{m.group(3)}"
        for old, new in renames:
            key = key.replace(old, new)
        out[key] = value
    out["shared_image_embedding.positional_embedding"] = out["prompt_encoder.shared_embedding.positional_embedding"]
    return out


def save_sam_as_transformers(arch: dict, state: dict, folder: Path) -> Path:
    """Save the segment-anything weights ``state`` of architecture ``arch`` (the keys of
    ``sam_fixtures.TINY``) as a transformers ``SamModel`` folder (safetensors + image processor)."""
    import transformers as tf

    c = arch
    vision = tf.SamVisionConfig(
        hidden_size=c["embed_dim"], output_channels=c["prompt_embed_dim"], num_hidden_layers=c["depth"],
        num_attention_heads=c["num_heads"], image_size=c["img_size"], patch_size=c["patch_size"],
        window_size=c["window_size"], global_attn_indexes=list(c["global_attn_indexes"]),
        mlp_dim=4 * c["embed_dim"], num_pos_feats=c["prompt_embed_dim"] // 2)
    config = tf.SamConfig(
        vision_config=vision,
        prompt_encoder_config=dict(hidden_size=c["prompt_embed_dim"], image_size=c["img_size"],
                                   patch_size=c["patch_size"], mask_input_channels=c["mask_in_chans"]),
        mask_decoder_config=dict(hidden_size=c["prompt_embed_dim"], mlp_dim=c["decoder_mlp_dim"],
                                 num_hidden_layers=c["decoder_depth"], num_attention_heads=8,
                                 iou_head_depth=c["iou_head_depth"], iou_head_hidden_dim=c["iou_head_hidden_dim"]))
    model = tf.SamModel(config).eval()
    missing, unexpected = model.load_state_dict(sam_state_to_transformers(state), strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    model.save_pretrained(folder)
    side = c["img_size"]
    tf.SamImageProcessor(size={"longest_edge": side}, pad_size={"height": side, "width": side}).save_pretrained(folder)
    return Path(folder)

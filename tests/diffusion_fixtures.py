"""Tiny random-weight diffusers pipelines for tests (configs as in diffusers' own tests), saved with
``save_pretrained`` so they load through the same code path as real checkpoints. No network."""
from __future__ import annotations

import string
from pathlib import Path


def _tokenizer():
    from transformers import CLIPTokenizer

    chars = list(string.ascii_lowercase + string.digits + ",.!?'-")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for tok in chars + [c + "</w>" for c in chars]:
        vocab[tok] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def _text_config(vocab_size: int, **extra):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32, intermediate_size=37,
                          layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=2,
                          vocab_size=vocab_size, hidden_act="gelu", projection_dim=32, **extra)


def _vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(block_out_channels=[32, 64], in_channels=3, out_channels=3,
                         down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
                         up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"], latent_channels=4,
                         sample_size=64)


def build_sd(in_channels: int = 9):
    """SD-1.5-style inpainting pipeline (``in_channels=9``) or a regular 4-channel one."""
    import torch
    from diffusers import (PNDMScheduler, StableDiffusionInpaintPipeline, StableDiffusionPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=2, sample_size=32,
                                in_channels=in_channels, out_channels=4,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32)
    tokenizer = _tokenizer()
    text_encoder = CLIPTextModel(_text_config(len(tokenizer)))
    cls = StableDiffusionInpaintPipeline if in_channels == 9 else StableDiffusionPipeline
    return cls(unet=unet, vae=_vae(), text_encoder=text_encoder, tokenizer=tokenizer,
               scheduler=PNDMScheduler(skip_prk_steps=True, steps_offset=1), safety_checker=None, feature_extractor=None,
               requires_safety_checker=False)


def build_sdxl():
    """SDXL-style inpainting pipeline (two text encoders, text_time embedding, 9 channels)."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=9,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
                                use_linear_projection=True, addition_embed_type="text_time",
                                addition_time_embed_dim=8, transformer_layers_per_block=(1, 2),
                                projection_class_embeddings_input_dim=80, cross_attention_dim=64)
    tokenizer = _tokenizer()
    config = _text_config(len(tokenizer))
    return StableDiffusionXLInpaintPipeline(
        unet=unet, vae=_vae(), text_encoder=CLIPTextModel(config), tokenizer=tokenizer,
        text_encoder_2=CLIPTextModelWithProjection(config), tokenizer_2=_tokenizer(),
        scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, steps_offset=1,
                                         beta_schedule="scaled_linear", timestep_spacing="leading"),
        requires_aesthetics_score=False, force_zeros_for_empty_prompt=True)


def save_tiny_models(root: Path) -> dict[str, str]:
    """Build and ``save_pretrained`` the three tiny pipelines under ``root``; returns name → folder."""
    paths = {}
    for name, build in (("sd9", lambda: build_sd(9)), ("sd4", lambda: build_sd(4)), ("sdxl", build_sdxl)):
        folder = root / name
        build().save_pretrained(folder)
        paths[name] = str(folder)
    return paths


def save_tiny_lora(folder: Path, model_folder: str, seed: int = 1, rank: int = 4) -> Path:
    """A random LoRA for the UNet of the tiny pipeline in ``model_folder``, written the way diffusers'
    LoRA training scripts write one (peft adapter on the attention projections,
    ``save_lora_weights`` → ``pytorch_lora_weights.safetensors``). Its B matrices are random (a freshly
    trained LoRA starts with B = 0, which would change nothing). Returns ``folder``."""
    import torch
    from diffusers import StableDiffusionInpaintPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(model_folder, subfolder="unet")
    torch.manual_seed(seed)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    state = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    folder = Path(folder)
    StableDiffusionInpaintPipeline.save_lora_weights(folder, unet_lora_layers=state, safe_serialization=True)
    return folder

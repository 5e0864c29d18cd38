"""Random-weight zero-shot detectors for the tests and the benchmark, built from transformers configs and
saved with ``save_pretrained`` (config.json, model.safetensors, processor and tokenizer files), so they
load through the same code path as the published ``IDEA-Research/grounding-dino-*`` and
``google/owlv2-*`` folders. Nothing is downloaded: the tokenizers are built here from small vocabularies.

* Grounding DINO uses BERT's WordPiece tokenizer, and the model hard-codes BERT's ids of its phrase
  delimiters ([CLS] 101, [SEP] 102, ``.`` 1012, ``?`` 1029): the small vocabulary keeps those ids.
* OWLv2 and OmDet-Turbo use CLIP's byte-level BPE tokenizer; the text model pools at the highest token
  id, so the end-of-text token is the last one.
* The tiny OmDet-Turbo uses transformers' Swin backbone (channels first, so no layer norm after it); the
  published one, and :func:`save_omdet_turbo` with ``tiny=False``, use timm's Swin-T (random weights,
  nothing downloaded: ``use_pretrained_backbone`` is off).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

WORDS = ("price", "sticker", "tag", "label", "logo", "watermark", "cat", "dog", "bottle", "mug", "box", "red",
         "a", "the", "of", "photo", "person", "car")


def bert_vocab(words=WORDS) -> list[str]:
    """A WordPiece vocabulary with BERT-base-uncased's special ids, letters, digits and ``words``."""
    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = "abcdefghijklmnopqrstuvwxyz0123456789"
    vocab += list(chars) + list(",'-!:;/()&") + [f"##{c}" for c in chars] + list(words)
    while len(vocab) < 1012:
        vocab.append(f"[unused{len(vocab)}]")
    vocab.append(".")
    while len(vocab) < 1029:
        vocab.append(f"[unused{len(vocab)}]")
    return vocab + ["?"]


def bert_tokenizer(folder: Path):
    from transformers import BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(bert_vocab()) + "\n")
    return BertTokenizer(str(folder / "vocab.txt"), do_lower_case=True)


def clip_tokenizer(folder: Path, words=WORDS):
    """A byte-level BPE (CLIP) tokenizer: letters, digits, and merges that spell ``words``."""
    from transformers import CLIPTokenizer

    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    vocab = ["!", '"'] + list(letters) + [c + "</w>" for c in letters]
    merges: list[str] = []
    for word in words:
        if len(word) < 2:
            continue
        current = word[0]
        for i, c in enumerate(word[1:], 1):
            nxt = c + ("</w>" if i == len(word) - 1 else "")
            merge = f"{current} {nxt}"
            current += nxt
            if merge not in merges:
                merges.append(merge)
            if current not in vocab:
                vocab.append(current)
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), pad_token="!",
                         model_max_length=16)


def _save(folder: Path, model_class, config, processor, seed: int) -> Path:
    """Build ``model_class(config)`` with random weights from ``seed``, save it and its processor in
    ``folder``, and drop the tokenizer's build folder."""
    import torch

    torch.manual_seed(seed)
    model_class(config).eval().save_pretrained(folder)
    processor.save_pretrained(folder)
    shutil.rmtree(folder / "_vocab")
    return folder


def save_grounding_dino(folder: Path, tiny: bool = True, seed: int = 0, base: bool = False) -> Path:
    """A random Grounding DINO in ``folder``: tiny (Swin and BERT of width 8, 20 queries, a 64–96 px
    input), or the published grounding-dino-tiny architecture (Swin-T, BERT-base, 900 queries, the
    800/1333 px input; ``base``: Swin-B like grounding-dino-base)."""
    from transformers import (GroundingDinoConfig, GroundingDinoForObjectDetection, GroundingDinoImageProcessor,
                              GroundingDinoProcessor, SwinConfig)

    folder = Path(folder)
    tokenizer = bert_tokenizer(folder / "_vocab")
    if tiny:
        swin = SwinConfig(window_size=7, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], image_size=64,
                          out_features=["stage2", "stage3", "stage4"], out_indices=[2, 3, 4])
        text = dict(model_type="bert", vocab_size=len(bert_vocab()), hidden_size=8, num_hidden_layers=1,
                    num_attention_heads=2, intermediate_size=16, max_position_embeddings=64)
        config = GroundingDinoConfig(d_model=32, encoder_layers=1, decoder_layers=2, encoder_attention_heads=2,
                                     decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                                     num_queries=20, encoder_n_points=2, decoder_n_points=2, backbone_config=swin,
                                     text_config=text, max_text_len=64)
        image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96})
    else:
        swin = (SwinConfig(out_indices=[2, 3, 4], embed_dim=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32],
                           window_size=12, image_size=384) if base
                else SwinConfig(out_indices=[2, 3, 4], window_size=7, image_size=224))
        config = GroundingDinoConfig(backbone_config=swin)  # text_config: BERT-base; 900 queries; 256 tokens
        image_processor = GroundingDinoImageProcessor()  # shortest edge 800, longest 1333
    return _save(folder, GroundingDinoForObjectDetection, config,
                 GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer), seed)


def save_owlv2(folder: Path, tiny: bool = True, seed: int = 0) -> Path:
    """A random OWLv2 in ``folder``: tiny (width 16, a 64 px square input, 16 patches), or the published
    owlv2-base-patch16 architecture (ViT-B/16 at 960 px: 3600 boxes, CLIP text encoder)."""
    from transformers import Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor

    folder = Path(folder)
    tokenizer = clip_tokenizer(folder / "_vocab")
    n = len(tokenizer.get_vocab())
    if tiny:
        config = Owlv2Config(
            text_config=dict(vocab_size=n, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                             num_attention_heads=2, max_position_embeddings=16, bos_token_id=n - 2,
                             eos_token_id=n - 1),
            vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                               image_size=64, patch_size=16),
            projection_dim=16)
        image_processor = Owlv2ImageProcessor(size={"height": 64, "width": 64})
    else:
        config = Owlv2Config(text_config=dict(bos_token_id=n - 2, eos_token_id=n - 1),
                             vision_config=dict(image_size=960))
        image_processor = Owlv2ImageProcessor()  # pad to a square, 960×960
    return _save(folder, Owlv2ForObjectDetection, config,
                 Owlv2Processor(image_processor=image_processor, tokenizer=tokenizer), seed)


def save_omdet_turbo(folder: Path, tiny: bool = True, seed: int = 0) -> Path:
    """A random OmDet-Turbo in ``folder``: tiny (Swin and CLIP text of width 8–16, 20 queries, a 128 px
    input), or the published omdet-turbo-swin-tiny-hf architecture (timm Swin-T at 640², CLIP ViT-B/16
    text encoder, 900 queries, the DETR image processor at 640×640)."""
    from transformers import DetrImageProcessor, OmDetTurboConfig, OmDetTurboForObjectDetection, OmDetTurboProcessor

    folder = Path(folder)
    tokenizer = clip_tokenizer(folder / "_vocab")
    n = len(tokenizer.get_vocab())
    if tiny:
        from transformers import SwinConfig

        swin = SwinConfig(window_size=7, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], image_size=64,
                          out_features=["stage2", "stage3", "stage4"], out_indices=[2, 3, 4])
        text = dict(model_type="clip_text_model", vocab_size=n, hidden_size=16, intermediate_size=32,
                    num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=77, bos_token_id=n - 2,
                    eos_token_id=n - 1, projection_dim=16)
        config = OmDetTurboConfig(
            backbone_config=swin, apply_layernorm_after_vision_backbone=False, text_config=text,
            text_projection_in_dim=16, text_projection_out_dim=16, task_encoder_hidden_dim=32, class_embed_dim=16,
            num_queries=20, encoder_hidden_dim=32, vision_features_channels=[32, 32, 32],
            encoder_in_channels=[16, 32, 64], encoder_attention_heads=2, encoder_dim_feedforward=32,
            decoder_hidden_dim=32, decoder_num_heads=2, decoder_num_layers=2, decoder_dim_feedforward=32,
            decoder_num_points=2, image_size=128)
        side = 128
    else:
        text = dict(model_type="clip_text_model", vocab_size=n, bos_token_id=n - 2, eos_token_id=n - 1)
        config = OmDetTurboConfig(use_timm_backbone=True, backbone="swin_tiny_patch4_window7_224",
                                  use_pretrained_backbone=False, text_config=text)
        side = 640
    image_processor = DetrImageProcessor(size={"height": side, "width": side}, do_pad=False)
    return _save(folder, OmDetTurboForObjectDetection, config,
                 OmDetTurboProcessor(image_processor=image_processor, tokenizer=tokenizer), seed)


def save_omdet_turbo_legacy(folder: Path, seed: int = 0) -> Path:
    """A random OmDet-Turbo with the published checkpoint's timm Swin-T backbone (at a 128 px input; small
    text model and heads), whose ``config.json`` is then rewritten the way the published one names its
    backbone: ``"backbone": "swin_tiny_patch4_window7_224"``, ``"backbone_kwargs"``, ``"backbone_config":
    null``."""
    from transformers import DetrImageProcessor, OmDetTurboConfig, OmDetTurboForObjectDetection, OmDetTurboProcessor

    folder = Path(folder)
    tokenizer = clip_tokenizer(folder / "_vocab")
    n = len(tokenizer.get_vocab())
    text = dict(model_type="clip_text_model", vocab_size=n, hidden_size=16, intermediate_size=32,
                num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=77, bos_token_id=n - 2,
                eos_token_id=n - 1, projection_dim=16)
    timm_kwargs = {"always_partition": True, "img_size": 128, "out_indices": [1, 2, 3]}
    config = OmDetTurboConfig(
        backbone_config={"model_type": "timm_backbone", "backbone": "swin_tiny_patch4_window7_224", **timm_kwargs},
        text_config=text, text_projection_in_dim=16, text_projection_out_dim=16, task_encoder_hidden_dim=32,
        class_embed_dim=16, num_queries=20, encoder_hidden_dim=32, vision_features_channels=[32, 32, 32],
        encoder_attention_heads=2, encoder_dim_feedforward=32, decoder_hidden_dim=32, decoder_num_heads=2,
        decoder_num_layers=2, decoder_dim_feedforward=32, decoder_num_points=2, image_size=128)
    image_processor = DetrImageProcessor(size={"height": 128, "width": 128}, do_pad=False)
    _save(folder, OmDetTurboForObjectDetection, config,
          OmDetTurboProcessor(image_processor=image_processor, tokenizer=tokenizer), seed)
    saved = json.loads((folder / "config.json").read_text())
    saved.update(backbone="swin_tiny_patch4_window7_224", backbone_config=None, backbone_kwargs=timm_kwargs,
                 use_timm_backbone=True, use_pretrained_backbone=False)
    (folder / "config.json").write_text(json.dumps(saved, indent=2))
    return folder


def save_mm_grounding_dino(folder: Path, tiny: bool = True, seed: int = 0) -> Path:
    """A random MM Grounding DINO (transformers ``mm-grounding-dino``) in ``folder``: tiny like
    :func:`save_grounding_dino`'s, or the published mm_grounding_dino_tiny architecture (Swin-T, BERT-base,
    900 queries, the 800/1333 px input). Same processor and tokenizer as Grounding DINO."""
    from transformers import (GroundingDinoImageProcessor, GroundingDinoProcessor, MMGroundingDinoConfig,
                              MMGroundingDinoForObjectDetection, SwinConfig)

    folder = Path(folder)
    tokenizer = bert_tokenizer(folder / "_vocab")
    if tiny:
        swin = SwinConfig(window_size=7, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], image_size=64,
                          out_features=["stage2", "stage3", "stage4"], out_indices=[2, 3, 4])
        text = dict(model_type="bert", vocab_size=len(bert_vocab()), hidden_size=8, num_hidden_layers=1,
                    num_attention_heads=2, intermediate_size=16, max_position_embeddings=64)
        config = MMGroundingDinoConfig(d_model=32, encoder_layers=1, decoder_layers=2, encoder_attention_heads=2,
                                       decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                                       num_queries=20, encoder_n_points=2, decoder_n_points=2,
                                       backbone_config=swin, text_config=text, max_text_len=64)
        image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96})
    else:
        config = MMGroundingDinoConfig(backbone_config=SwinConfig(out_indices=[2, 3, 4], window_size=7,
                                                                  image_size=224))
        image_processor = GroundingDinoImageProcessor()
    return _save(folder, MMGroundingDinoForObjectDetection, config,
                 GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer), seed)


def oracle_forward(detector):
    """**Stands in for the network's forward pass only** (loader, processor and post-processing stay real):
    finds the bright object in the ``pixel_values`` the real processor produced, and reports it as query 0
    for the first phrase, in the model's normalised coordinates of that input (what a trained model would
    do). Two low-scoring decoy boxes follow."""
    import torch

    from autoinpaint.detect.postprocess import phrase_spans

    def forward(pixel_values, input_ids=None, classes_input_ids=None, **_):
        plane = pixel_values[0].mean(0)
        mask = plane > (plane.max() + plane.median()) / 2
        ys, xs = torch.nonzero(mask, as_tuple=True)
        hh, ww = plane.shape
        x0, x1, y0, y1 = xs.min().item(), xs.max().item() + 1, ys.min().item(), ys.max().item() + 1
        box = [(x0 + x1) / 2 / ww, (y0 + y1) / 2 / hh, (x1 - x0) / ww, (y1 - y0) / hh]
        boxes = torch.tensor([box, [0.2, 0.2, 0.1, 0.1], [0.8, 0.8, 0.2, 0.2]])[None]
        if detector.family == "omdet":
            logits = torch.full((1, 3, classes_input_ids.shape[0]), -6.0)
            logits[0, 0, 0] = 5.0
            return SimpleNamespace(decoder_class_logits=logits, decoder_coord_logits=boxes)
        if detector.family == "grounding-dino":
            logits = torch.full((1, 3, detector.model.config.max_text_len), float("-inf"))
            logits[:, :, :input_ids.shape[1]] = -6.0
            first = phrase_spans(input_ids[0].tolist(), detector.delimiters)[0]
            logits[0, 0, torch.as_tensor(first)] = 5.0
        else:
            logits = torch.full((1, 3, input_ids.shape[0]), -6.0)
            logits[0, 0, 0] = 5.0
        return SimpleNamespace(logits=logits, pred_boxes=boxes)

    return forward

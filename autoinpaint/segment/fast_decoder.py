"""The prompt decoder's cross-attention, computed through the few prompt tokens (same function, less work).

SAM's two-way transformer (every family: SAM, SAM-HQ, SAM 2.1, EdgeTAM) attends between a few prompt
tokens (T: the IoU and mask tokens and the prompts, 7-9 for a click) and the image's N = 64² tokens.
Written as the models write it, each cross-attention projects all N image tokens: four N×C × C×C/2
matmuls per layer, 1.34 of a click's 1.74 G multiply-adds on SAM ViT-B. Matrix products associate, so
each of those projections can instead be folded into the T-token side first:

* tokens → image: ``softmax(q_h (x W_k,h + b_k,h)ᵀ)`` = ``softmax((q_h W_k,h) xᵀ)`` (the bias adds one
  constant to every score of a row, which softmax ignores), and ``P_h (x W_v,hᵀ + b_v,h)`` =
  ``(P_h x) W_v,hᵀ + b_v,h`` (each row of P sums to 1);
* image → tokens: ``(x W_q,hᵀ + b_q,h) k_hᵀ`` = ``x (W_q,hᵀ k_hᵀ) + b_q,h k_hᵀ``, and the output
  projection ``concat_h(P_h v_h) W_oᵀ`` = ``Σ_h P_h (v_h W_o,hᵀ)``.

The image side then meets an N×C × C×(H·T) product instead of N×C × C×C/2: with H = 8 heads and T = 7,
56 columns instead of 128 (0.44×). The result is the same up to float rounding (≤ 4e-7 on the logits of
every family at its published size in ``benchmarks/bench_fast.py``; ``tests/test_fast_decoder.py`` holds
every family to its own modules). With more than C/(2H) tokens (about ten points) the folded form costs
more (24 points on ViT-B: 53 ms instead of 49); the decoder graphs still use it for every prompt kind, as
one exported graph serves every number of points.

What the first layer takes from the image alone (the image tokens and their projections in its two
cross-attentions) depends on no prompt when there is no mask input: :func:`image_side_tensors` computes it once
per image, and the decoders of SAM (segment_anything's and transformers') and SAM-HQ take it as
``image_side`` (:func:`_first_layer`); a click's first layer then costs 4 M multiply-adds instead of 200 M.

:func:`install` swaps a loaded model's decoder cross-attention modules for :class:`FoldedAttention`
wrappers (and segment_anything's mask decoder for :class:`TokenLayoutDecoder`, transformers' SAM one for
:class:`TransformersTokenLayoutDecoder`), in place, once, from
the decoder graphs' constructors, so the PyTorch path and the exported ONNX graphs compute the same
function. Imported only where a model is loaded (it imports torch).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

TO_IMAGE = "to_image"  # queries: prompt tokens; keys and values: image tokens
FROM_IMAGE = "from_image"  # queries: image tokens; keys and values: prompt tokens


class FoldedAttention(nn.Module):
    """One of the decoder's cross-attentions (``inner``: a SAM, SAM 2 or SAM-HQ attention module with
    ``q_proj``/``k_proj``/``v_proj`` and ``out_proj`` or ``o_proj``), computed with its projections of
    the image tokens folded into the prompt tokens' side. ``direction``: :data:`TO_IMAGE` or
    :data:`FROM_IMAGE`. Called exactly as ``inner`` is: ``(query, key, value, ...)`` with tensors
    …×L×C; returns what ``inner`` returns (a tensor, or ``(tensor, None)`` for transformers' modules)."""

    def __init__(self, inner: nn.Module, direction: str) -> None:
        super().__init__()
        self.inner = inner
        self.direction = direction
        self.heads = int(getattr(inner, "num_heads", None) or inner.num_attention_heads)
        self.out = getattr(inner, "out_proj", None) or inner.o_proj
        internal = inner.q_proj.out_features
        self.head_dim = internal // self.heads
        self.scaling = self.head_dim ** -0.5
        self.returns_tuple = not hasattr(inner, "num_heads")  # transformers' modules return (output, weights)
        self.train(inner.training)

    def forward(self, query=None, key=None, value=None, *args, q=None, k=None, v=None, **kwargs):
        # segment_anything calls with q=, k=, v=; transformers with query=, key=, value=
        query, key, value = (q, k, v) if query is None else (query, key, value)
        fold = self._to_image if self.direction == TO_IMAGE else self._from_image
        out = fold(query, key, value)
        return (out, None) if self.returns_tuple else out

    def _split(self, weight: torch.Tensor) -> torch.Tensor:
        """A projection's weight (H·d)×C → H×d×C."""
        return weight.reshape(self.heads, self.head_dim, weight.shape[-1])

    def _to_image(self, query, key, value):
        # query …×T×C (tokens); key, value …×N×C (image)
        p = self.inner
        lead, t = query.shape[:-2], query.shape[-2]
        q = p.q_proj(query).reshape(*lead, t, self.heads, self.head_dim).transpose(-3, -2)  # …×H×T×d
        qk = (q @ self._split(p.k_proj.weight)).reshape(*lead, self.heads * t, -1)  # …×(H·T)×C
        probs = torch.softmax((qk * self.scaling) @ key.transpose(-1, -2), dim=-1)  # …×(H·T)×N
        ctx = (probs @ value).reshape(*lead, self.heads, t, -1)  # …×H×T×C
        wv = self._split(p.v_proj.weight).transpose(-1, -2)  # H×C×d
        heads = ctx @ wv + p.v_proj.bias.reshape(self.heads, 1, self.head_dim)  # …×H×T×d
        return self.out(heads.transpose(-3, -2).reshape(*lead, t, self.heads * self.head_dim))

    def _from_image(self, query, key, value):
        # query …×N×C (image); key, value …×T×C (tokens)
        p = self.inner
        lead, t = key.shape[:-2], key.shape[-2]
        k = p.k_proj(key).reshape(*lead, t, self.heads, self.head_dim).transpose(-3, -2)  # …×H×T×d
        v = p.v_proj(value).reshape(*lead, t, self.heads, self.head_dim).transpose(-3, -2)
        wq = self._split(p.q_proj.weight)  # H×d×C
        fold_q = (wq.transpose(-1, -2) @ k.transpose(-1, -2)) * self.scaling  # …×H×C×T
        fold_q = fold_q.transpose(-3, -2).reshape(*lead, -1, self.heads * t)  # …×C×(H·T)
        bias_q = (p.q_proj.bias.reshape(self.heads, 1, self.head_dim) @ k.transpose(-1, -2)) * self.scaling
        scores = query @ fold_q + bias_q.reshape(*lead, 1, self.heads * t)  # …×N×(H·T)
        n = query.shape[-2]
        probs = torch.softmax(scores.reshape(*lead, n, self.heads, t), dim=-1).reshape(*lead, n, self.heads * t)
        wo = self.out.weight.reshape(-1, self.heads, self.head_dim).permute(1, 2, 0)  # H×d×C
        fold_v = (v @ wo).reshape(*lead, self.heads * t, -1)  # …×(H·T)×C
        return probs @ fold_v + self.out.bias

    def to_image_projected(self, query, keys, values):
        """Tokens → image with the image's key and value projections given (:func:`image_side_tensors`): ``keys``
        1×H×d×N, ``values`` 1×H×N×d; ``query`` …×T×C. Returns the attention's output …×T×C."""
        p = self.inner
        lead, t = query.shape[:-2], query.shape[-2]
        q = p.q_proj(query).reshape(*lead, t, self.heads, self.head_dim).transpose(-3, -2)  # …×H×T×d
        probs = torch.softmax((q * self.scaling) @ keys, dim=-1)  # …×H×T×N
        heads = (probs @ values).transpose(-3, -2).reshape(*lead, t, self.heads * self.head_dim)
        return self.out(heads)

    def from_image_projected(self, queries, key, value):
        """Image → tokens with the image's query projection given (:func:`image_side_tensors`): ``queries``
        1×H×N×d; ``key``, ``value`` …×T×C (tokens). Returns the attention's output …×N×C."""
        p = self.inner
        lead, t = key.shape[:-2], key.shape[-2]
        k = p.k_proj(key).reshape(*lead, t, self.heads, self.head_dim).transpose(-3, -2)  # …×H×T×d
        v = p.v_proj(value).reshape(*lead, t, self.heads, self.head_dim).transpose(-3, -2)
        probs = torch.softmax((queries @ k.transpose(-1, -2)) * self.scaling, dim=-1)  # …×H×N×T
        n = queries.shape[-2]
        probs = probs.transpose(-3, -2).reshape(*lead, n, self.heads * t)  # …×N×(H·T)
        wo = self.out.weight.reshape(-1, self.heads, self.head_dim).permute(1, 2, 0)  # H×d×C
        return probs @ (v @ wo).reshape(*lead, self.heads * t, -1) + self.out.bias


class TokenLayoutDecoder(nn.Module):
    """segment_anything's ``MaskDecoder`` (``inner``, its weights and submodules) computing its masks with
    the image kept in token layout (N×C, as the two-way transformer reads it) from the embedding to the
    logits, instead of its B×C×h×w tensors:

    * the image embedding, its positional encoding and a mask-less dense embedding stay one image
      (batch 1), broadcast against the prompts, where ``predict_masks`` copies them once per prompt
      (``repeat_interleave``; an expanded copy of each, 4 MB per prompt at ViT-B's size, in an exported
      graph);
    * the output upscaling's two 2×2, stride-2 transposed convolutions are two matmuls on the tokens
      (each token's C channels → its 2×2 sub-pixels' C/4, then each of those → its 2×2 × C/8), its
      LayerNorm runs over the last axis where they leave the channels, and the sub-pixels are put in
      place only in the kept logits (``M``×4h×4w instead of the C/8×4h×4w features, three transposes less);
    * only the kept masks are predicted (one, or the three of ``multimask_output``), not all four.

    The same function as ``inner`` (the logits within 4e-7 of it at ViT-B's size): called as it is, with
    ``dense_prompt_embeddings`` B×C×h×w or, without a mask input, the no-mask embedding unexpanded (1×C×1×1),
    which the model's own decoder also accepts; or, without a mask input, with ``image_side``
    (:func:`image_side_tensors`) instead of the image and dense embeddings. ViT-B, a click's decoder on ONNX
    Runtime, 2 threads: 28.8 → 23.9 ms and 29.6 → 23.4 ms (medians of 25, interleaved in one process,
    ``benchmarks/bench_fast.py --before``)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.train(inner.training)

    def forward(self, image_embeddings: torch.Tensor | None, image_pe: torch.Tensor,
                sparse_prompt_embeddings: torch.Tensor, dense_prompt_embeddings: torch.Tensor | None,
                multimask_output: bool, image_side: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.inner
        prompts = sparse_prompt_embeddings.shape[0]
        output_tokens = torch.cat([d.iou_token.weight, d.mask_tokens.weight], dim=0)
        tokens = torch.cat((output_tokens.unsqueeze(0).expand(prompts, -1, -1), sparse_prompt_embeddings), dim=1)
        key_pe = _tokens(image_pe)
        t = d.transformer  # TwoWayTransformer.forward, on tokens
        if image_side is None:
            # batch 1 (or B with a mask input) × N × C, broadcast against the B prompts
            queries, keys = tokens, _tokens(image_embeddings) + _tokens(dense_prompt_embeddings)
            layers = t.layers
        else:  # no mask input: the first layer from the image's own projections (image_side_tensors)
            (queries, keys), layers = _first_layer(t.layers[0], tokens, image_side), t.layers[1:]
        for layer in layers:
            queries, keys = layer(queries=queries, keys=keys, query_pe=tokens, key_pe=key_pe)
        attn_out = t.final_attn_token_to_image(q=queries + tokens, k=keys + key_pe, v=keys)
        hs = t.norm_final_attn(queries + attn_out)

        kept = range(1, d.num_mask_tokens) if multimask_output else range(0, 1)
        hyper = torch.stack([d.output_hypernetworks_mlps[i](hs[:, 1 + i, :]) for i in kept], dim=1)  # B×M×C/8
        side = int(image_pe.shape[-1])
        keys, height, width = shown_part(keys, side, side, (image_side or {}).get(SHOWN))
        x = upscale_tokens(keys, *d.output_upscaling)
        masks = in_place(x @ hyper.transpose(1, 2), height, width)
        iou = d.iou_prediction_head(hs[:, 0, :])
        return masks, iou[:, 1:] if multimask_output else iou[:, 0:1]


class TransformersTokenLayoutDecoder(nn.Module):
    """transformers' ``SamMaskDecoder`` (``inner``) computing its masks as :class:`TokenLayoutDecoder` does
    segment_anything's: the image embedding and positional encoding given as one image (batch 1) broadcast
    against the prompts, the output upscaling in token layout (:func:`upscale_tokens`), only the kept masks.
    Called as ``inner`` is (or, without a mask input, with ``image_side`` from :func:`image_side_tensors` in place
    of the image and dense embeddings); returns what it returns (masks B×P×M×H×W, IoU B×P×M)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.train(inner.training)

    def forward(self, image_embeddings, image_positional_embeddings, sparse_prompt_embeddings,
                dense_prompt_embeddings, multimask_output: bool, attention_similarity=None, target_embedding=None,
                image_side=None):
        d = self.inner
        _, num_channels, height, width = image_positional_embeddings.shape
        batch_size, point_batch_size, point_embedding, keys = prompted_transformer(
            d, torch.cat([d.iou_token.weight, d.mask_tokens.weight], dim=0), image_embeddings,
            image_positional_embeddings, sparse_prompt_embeddings, dense_prompt_embeddings, attention_similarity,
            target_embedding, image_side)
        kept = range(1, d.num_mask_tokens) if multimask_output else range(0, 1)
        mlps = d.output_hypernetworks_mlps
        hyper = torch.stack([mlps[i](point_embedding[:, :, 1 + i, :]) for i in kept], dim=2)  # B×P×M×C/8
        rows = batch_size * point_batch_size
        keys, height, width = shown_part(keys.reshape(rows, height * width, num_channels), height, width,
                                         (image_side or {}).get(SHOWN))
        x = upscale_tokens(keys, d.upscale_conv1, d.upscale_layer_norm, d.activation, d.upscale_conv2, d.activation)
        masks = in_place(x @ hyper.reshape(rows, len(kept), -1).transpose(1, 2), height, width)
        masks = masks.reshape(batch_size, point_batch_size, len(kept), 4 * height, 4 * width)
        iou = d.iou_prediction_head(point_embedding[:, :, 0, :])
        return masks, iou[:, :, 1:] if multimask_output else iou[:, :, 0:1]


def prompted_transformer(d: nn.Module, output_tokens: torch.Tensor, image_embeddings: torch.Tensor | None,
                         image_positional_embeddings: torch.Tensor, sparse_prompt_embeddings: torch.Tensor | None,
                         dense_prompt_embeddings: torch.Tensor | None, attention_similarity=None,
                         target_embedding=None, image_side: dict | None = None):
    """The two-way transformer of a transformers SAM decoder ``d`` on its ``output_tokens`` (T×C) followed by
    each prompt's sparse embeddings (B×P×n×C), against the image embedding plus the dense prompt embedding,
    as the decoder's own ``forward`` runs it, except that an image and a positional encoding of batch 1 meet
    the B prompts by broadcasting instead of as copies. With ``image_side`` (:func:`image_side_tensors`, no mask
    input) the image embedding and dense embedding are not used: the image enters as those tokens, and the
    first layer's cross-attentions read its projections. Returns (B, P, tokens B×P×(T+n)×C, image tokens
    B×P×h·w×C)."""
    if image_side is not None:
        batch_size = sparse_prompt_embeddings.shape[0]
    else:
        batch_size = (sparse_prompt_embeddings.shape[0] if sparse_prompt_embeddings is not None
                      else len(image_embeddings))
    point_batch_size = sparse_prompt_embeddings.shape[1] if sparse_prompt_embeddings is not None else 1
    tokens = output_tokens.repeat(batch_size, point_batch_size, 1, 1)
    if sparse_prompt_embeddings is not None:
        tokens = torch.cat([tokens, sparse_prompt_embeddings], dim=2)
    tokens = tokens.to(d.iou_token.weight.dtype)
    if image_side is not None:
        queries, keys = _from_image_side(d.transformer, tokens, image_side, _tokens(image_positional_embeddings))
        return batch_size, point_batch_size, queries, keys
    image_embeddings = image_embeddings + dense_prompt_embeddings
    if point_batch_size != 1:
        image_embeddings = image_embeddings.repeat_interleave(point_batch_size, 0)
        if len(image_positional_embeddings) != 1:
            image_positional_embeddings = image_positional_embeddings.repeat_interleave(point_batch_size, 0)
    point_embedding, keys = d.transformer(
        point_embeddings=tokens, image_embeddings=image_embeddings,
        image_positional_embeddings=image_positional_embeddings, attention_similarity=attention_similarity,
        target_embedding=target_embedding)
    return batch_size, point_batch_size, point_embedding, keys


IMAGE_SIDE = ("image_tokens", "layer0_keys", "layer0_values", "layer0_queries")
SHOWN = "shown_tokens"  # an image-side input whose shape (rows, columns) is the part of the token grid to upscale
NOT_SHOWN = -1e4  # the low-resolution logits a decoder did not compute (the photo does not show them)


def shown_tokens(input_size: tuple[int, int], square: int, grid: int) -> tuple[int, int]:
    """The top-left rows and columns of a SAM 1 token grid (``grid``×``grid`` tokens over the ``square`` padded
    input, 4·grid logits a side) whose logits the mask of a photo resized to ``input_size`` (H, W) depends on:
    the post-processing upsamples the logits bilinearly to the square and crops it to ``input_size`` (it reads one
    logit row and column past the photo's, and one more as margin), and SAM-HQ's HQ mask adds two 3×3
    convolutions (two more rows and columns of upscaled features)."""
    scale = square / (4 * grid)  # input pixels per logit

    def tokens(n: int) -> int:
        last = math.floor((n - 0.5) / scale - 0.5) + 2  # bilinear: the last input pixel's upper source, + margin
        return max(1, min(grid, (last + 2) // 4 + 1))  # + the two 3×3 convolutions' reach

    return tokens(input_size[0]), tokens(input_size[1])


def on_grid(logits: np.ndarray, side: int) -> np.ndarray:
    """Low-resolution logits B×C×h×w of the grid's top-left part → B×C×side×side, the rest :data:`NOT_SHOWN`
    (the post-processing crops it away); unchanged when they cover the grid."""
    h, w = logits.shape[-2:]
    if (h, w) == (side, side):
        return logits
    out = np.full((*logits.shape[:-2], side, side), NOT_SHOWN, np.float32)
    out[..., :h, :w] = logits
    return out


def shown_part(keys: torch.Tensor, height: int, width: int, shown: torch.Tensor | None):
    """Image tokens B×(h·w)×C → those of the grid's top-left ``shown.shape`` rows and columns, with that
    grid's (rows, columns); unchanged without ``shown`` (:data:`SHOWN`)."""
    if shown is None:
        return keys, height, width
    rows, cols = shown.shape
    batch, _, channels = keys.shape
    part = keys.reshape(batch, height, width, channels)[:, :rows, :cols]
    return part.reshape(batch, rows * cols, channels), rows, cols


def image_side_tensors(model: nn.Module, features: torch.Tensor) -> dict[str, torch.Tensor]:
    """What the first layer of a SAM decoder (segment_anything's, transformers' SAM and SAM-HQ) computes from
    the image alone (a click without a mask input then skips it), named as :data:`IMAGE_SIDE`:
    ``image_tokens`` 1×N×C (the image embedding plus the no-mask embedding, in token layout), and the first
    layer's projections of the image: ``layer0_keys`` 1×H×d×N and ``layer0_values`` 1×H×N×d (tokens →
    image), ``layer0_queries`` 1×H×N×d (image → tokens). ``features``: the image embedding, 1×C×h×w."""
    decoder = model.mask_decoder
    layer = getattr(decoder, "inner", decoder).transformer.layers[0]
    to_image, from_image = (getattr(m, "inner", m) for m in (layer.cross_attn_token_to_image,
                                                             layer.cross_attn_image_to_token))
    if hasattr(model.prompt_encoder, "get_dense_pe"):  # segment_anything
        pe = model.prompt_encoder.get_dense_pe()
    else:
        pe = model.get_image_wide_positional_embeddings()

    def heads(x: torch.Tensor, attention: nn.Module) -> torch.Tensor:  # 1×N×(H·d) → 1×H×N×d
        count = int(getattr(attention, "num_heads", None) or attention.num_attention_heads)
        return x.reshape(1, x.shape[1], count, -1).transpose(1, 2)

    with torch.no_grad():
        image = _tokens(features + model.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1))  # 1×N×C
        keyed = image + _tokens(pe)
        side = (image, heads(to_image.k_proj(keyed), to_image).transpose(-1, -2),
                heads(to_image.v_proj(image), to_image), heads(from_image.q_proj(keyed), from_image))
    return {name: x.contiguous() for name, x in zip(IMAGE_SIDE, side)}


def image_side(model: nn.Module, embedding, device: str = "cpu") -> dict[str, torch.Tensor]:
    """:func:`image_side_tensors` of ``embedding``'s features (an :class:`~..models.embedding_cache.Embedding`),
    computed on its first use and kept with it (``embedding.derived``), as CPU float32 tensors."""
    side = embedding.derived.get("image_side")
    if side is None:
        from ..models.device import decoder_threads

        with torch.inference_mode(), decoder_threads(device):
            side = image_side_tensors(model, embedding.tensors["features"].to(device))
        side = embedding.derived.setdefault("image_side", {k: v.float().cpu().contiguous() for k, v in side.items()})
    return side


def _from_image_side(t: nn.Module, tokens: torch.Tensor, side: dict, key_pe: torch.Tensor):
    """transformers' two-way transformer ``t`` (SAM, SAM-HQ) on the prompt ``tokens`` (B×P×T×C) against one
    image given as :func:`image_side_tensors`: its first layer by :func:`_first_layer`, the other layers and
    the final attention as the transformer's own ``forward``. ``key_pe`` 1×N×C."""
    queries, keys = _first_layer(t.layers[0], tokens, side)
    key_pe = key_pe.unsqueeze(1)  # 1×1×N×C, as the transformer's own
    for layer in t.layers[1:]:
        queries, keys, _ = layer(queries=queries, keys=keys, query_point_embedding=tokens,
                                 key_point_embedding=key_pe, attention_similarity=None)
    attn_out = t.final_attn_token_to_image(query=queries + tokens, key=keys + key_pe, value=keys)[0]
    return t.layer_norm_final_attn(queries + attn_out), keys


def _first_layer(block: nn.Module, tokens: torch.Tensor, side: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The first block of a two-way transformer (segment_anything's ``TwoWayAttentionBlock`` or transformers'
    ``SamTwoWayAttentionBlock``, with no positional encoding for the tokens' self-attention), as it runs, on
    the prompt ``tokens`` (…×T×C) against one image given as :func:`image_side_tensors`: its cross-attentions
    (:class:`FoldedAttention`) read the image's projections. Returns (queries …×T×C, image tokens …×N×C)."""
    norm = [getattr(block, f"norm{i}", None) or getattr(block, f"layer_norm{i}") for i in range(1, 5)]
    attention = block.self_attn
    if hasattr(attention, "num_heads"):  # segment_anything's Attention
        queries = attention(q=tokens, k=tokens, v=tokens)
    else:  # transformers' returns (output, weights)
        queries = attention(query=tokens, key=tokens, value=tokens)[0]
    queries = norm[0](queries)
    to_image = block.cross_attn_token_to_image.to_image_projected(queries + tokens, side["layer0_keys"],
                                                                  side["layer0_values"])
    queries = norm[1](queries + to_image)
    queries = norm[2](queries + block.mlp(queries))
    from_image = block.cross_attn_image_to_token.from_image_projected(side["layer0_queries"], queries + tokens,
                                                                      queries)
    return queries, norm[3](side["image_tokens"] + from_image)


def _tokens(x: torch.Tensor) -> torch.Tensor:
    """B×C×h×w → B×(h·w)×C (a 1×C×1×1 embedding → 1×1×C, broadcast against the tokens)."""
    return x.flatten(2).transpose(1, 2)


def upscale_tokens(keys: torch.Tensor, up1: nn.Module, norm: nn.Module, act1, up2: nn.Module, act2) -> torch.Tensor:
    """SAM's output upscaling (``up1``, a 2×2 stride-2 transposed conv C → C/4; LayerNorm ``norm`` over the
    channels; ``act1``; ``up2``, C/4 → C/8; ``act2``) on the image tokens ``keys`` (B×N×C, N = h·w row-major)
    as two matmuls, each token's channels → its 2×2 sub-pixels' channels. Returns B×16N×C/8 in the order
    (i, j, a, b, a2, b2) of pixel (4i + 2a + a2, 4j + 2b + b2), which :func:`in_place` puts in place."""
    batch, n, _ = keys.shape
    # transposed conv weights Cin×Cout×2×2 → Cin×(2·2·Cout): output (token, a, b, channel)
    w1 = up1.weight.permute(0, 2, 3, 1).reshape(up1.weight.shape[0], -1)
    x = (keys @ w1 + up1.bias.repeat(4)).reshape(batch, n * 4, -1)  # B×4N×C/4: (i, j, a, b)
    x = act1(torch.nn.functional.layer_norm(x, x.shape[-1:], norm.weight, norm.bias, norm.eps))
    w2 = up2.weight.permute(0, 2, 3, 1).reshape(up2.weight.shape[0], -1)
    return act2(x @ w2 + up2.bias.repeat(4)).reshape(batch, n * 16, -1)  # B×16N×C/8


def in_place(values: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """B×16N×M values in :func:`upscale_tokens`' order (N = ``height``·``width`` tokens) → B×M×4h×4w images:
    only these M channels are reordered (ONNX Runtime's 8-D transposes are slow: 15 ms for C/8 = 32 channels at
    256²)."""
    batch = values.shape[0]
    values = values.reshape(batch, height, width, 2, 2, 2, 2, -1).permute(0, 7, 1, 3, 5, 2, 4, 6)
    return values.reshape(batch, -1, 4 * height, 4 * width)


_CROSS = {"cross_attn_token_to_image": TO_IMAGE, "cross_attn_image_to_token": FROM_IMAGE,
          "final_attn_token_to_image": TO_IMAGE}


def install(model: nn.Module) -> int:
    """Swap, in place, every cross-attention of ``model.mask_decoder``'s two-way transformer (its layers
    and its final attention) for a :class:`FoldedAttention`, segment_anything's ``MaskDecoder`` for a
    :class:`TokenLayoutDecoder`, transformers' ``SamMaskDecoder`` for a :class:`TransformersTokenLayoutDecoder`,
    and a transformers SAM-HQ decoder for :class:`GivenHQFeatures` (its callers
    then pass :func:`hq_features` as the intermediate embedding). A second call changes nothing. Returns
    how many modules it swapped."""
    swapped = 0
    mask_decoder = model.mask_decoder
    kind = type(mask_decoder)
    if kind.__name__ == "SamHQMaskDecoder":
        model.mask_decoder = GivenHQFeatures(mask_decoder)
        swapped += 1
    elif kind.__name__ == "MaskDecoder" and kind.__module__.startswith("segment_anything."):
        model.mask_decoder = TokenLayoutDecoder(mask_decoder)
        swapped += 1
    elif kind.__name__ == "SamMaskDecoder" and kind.__module__.startswith("transformers."):
        model.mask_decoder = TransformersTokenLayoutDecoder(mask_decoder)
        swapped += 1
    elif isinstance(mask_decoder, (GivenHQFeatures, TokenLayoutDecoder, TransformersTokenLayoutDecoder)):
        mask_decoder = mask_decoder.inner
    transformer = mask_decoder.transformer
    for parent in [transformer, *getattr(transformer, "layers", [])]:
        for name, direction in _CROSS.items():
            child = getattr(parent, name, None)
            if child is not None and not isinstance(child, FoldedAttention):
                setattr(parent, name, FoldedAttention(child, direction))
                swapped += 1
    return swapped


def hq_features(mask_decoder: nn.Module, features: torch.Tensor, intermediate: torch.Tensor) -> torch.Tensor:
    """SAM-HQ's HQ features of one image, as its mask decoder computes them on every click: the image
    embedding (B×C×h×w) through ``encoder_conv1/norm/conv2`` plus the ViT's early features (B×h×w×D)
    through ``compress_vit_conv1/norm/conv2`` → B×C/8×4h×4w. They depend on the image only (4.1 of a
    click's 6.6 G multiply-adds on SAM-HQ ViT-B), so :class:`GivenHQFeatures` takes them precomputed."""
    d = mask_decoder.inner if isinstance(mask_decoder, GivenHQFeatures) else mask_decoder
    act = d.activation
    embed = d.encoder_conv2(act(d.encoder_norm(d.encoder_conv1(features))))
    vit = intermediate.permute(0, 3, 1, 2).contiguous()
    return embed + d.compress_vit_conv2(act(d.compress_vit_norm(d.compress_vit_conv1(vit))))


class GivenHQFeatures(nn.Module):
    """transformers' ``SamHQMaskDecoder`` (``inner``, its weights and submodules) computing SAM-HQ's masks
    as SAM-HQ's own code does (SysCV/sam-hq ``MaskDecoderHQ``), with the image's HQ features
    (:func:`hq_features`, B×C/8×4h×4w) given as ``intermediate_embeddings=[hq]`` instead of computed from
    the ViT's features on every click. The HQ mask's last 3×3 convolution (C/4 → C/8 channels, then a dot
    product with the HQ token's C/8-vector) is folded into one C/4 → 1 convolution per prompt (1.2 G
    multiply-adds → 38 M at 256²). Without a mask input it may take ``image_side`` (:func:`image_side_tensors`)
    in place of the image and dense embeddings. Outputs as transformers' decoder returns them (masks
    B×P×M×H×W, IoU B×P×M; with several candidates sorted by IoU)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.train(inner.training)

    def forward(self, image_embeddings, image_positional_embeddings, sparse_prompt_embeddings,
                dense_prompt_embeddings, multimask_output: bool, hq_token_only: bool,
                intermediate_embeddings=None, attention_similarity=None, target_embedding=None, image_side=None):
        d = self.inner
        _, num_channels, height, width = image_positional_embeddings.shape
        hq_features = intermediate_embeddings[0]
        batch_size, point_batch_size, point_embedding, keys = prompted_transformer(
            d, torch.cat([d.iou_token.weight, d.mask_tokens.weight, d.hq_token.weight], dim=0), image_embeddings,
            image_positional_embeddings, sparse_prompt_embeddings, dense_prompt_embeddings, attention_similarity,
            target_embedding, image_side)
        iou_token_out = point_embedding[:, :, 0, :]
        mask_tokens_out = point_embedding[:, :, 1:(1 + d.num_mask_tokens), :]

        # the transformer's image output is upscaled, as SAM-HQ's own MaskDecoderHQ.predict_masks does (and
        # transformers' SamMaskDecoder for SAM); transformers 5.24's SamHQMaskDecoder upscales the embedding
        # it gave the transformer instead, read through transpose(2, 3): a porting slip the weights were not
        # trained with. In token layout, as SAM's (upscale_tokens): the two transposed convolutions as matmuls
        rows = batch_size * point_batch_size
        grid_h, grid_w = 4 * height, 4 * width
        keys, height, width = shown_part(keys.reshape(rows, height * width, num_channels), height, width,
                                         (image_side or {}).get(SHOWN))
        upscaled = upscale_tokens(keys, d.upscale_conv1, d.upscale_layer_norm, d.activation, d.upscale_conv2,
                                  d.activation)  # rows×16N×C/8
        c8, h, w = upscaled.shape[-1], 4 * height, 4 * width
        # the kept SAM masks only (with several candidates, in the order of their predicted IoU: their
        # hypernetwork vectors are sorted, not the masks)
        kept = range(1, d.num_mask_tokens - 1) if multimask_output else range(0, 1)
        sam_mlps = d.output_hypernetworks_mlps
        hyper_sam = torch.stack([sam_mlps[i](mask_tokens_out[:, :, i, :]) for i in kept], dim=2)  # B×P×M×C/8
        iou_pred = d.iou_prediction_head(iou_token_out)
        if multimask_output:
            iou_pred, order = torch.sort(iou_pred[:, :, 1:d.num_mask_tokens - 1], dim=2, descending=True)
            hyper_sam = torch.gather(hyper_sam, 2, order[..., None].expand(-1, -1, -1, c8))
        else:
            iou_pred = iou_pred[:, :, 0:1]
        # the upscaled features as an image, channels-last (sub-pixels put in place with the channels kept
        # together, 128-byte runs): the SAM masks read it, and the HQ branch's 3×3 convolution, which ONNX
        # Runtime reorders into its blocked layout in one pass
        image = upscaled.reshape(rows, height, width, 2, 2, 2, 2, c8).permute(0, 1, 3, 5, 2, 4, 6, 7)
        image = image.reshape(rows, h * w, c8)
        masks_sam = (image @ hyper_sam.reshape(rows, len(kept), c8).transpose(1, 2)).transpose(1, 2)
        image = image.reshape(rows, h, w, c8).permute(0, 3, 1, 2)
        # mask_norm (a LayerNorm over the channels) and the GELU run channels-last, where the taps below read
        # them: no permute back of this, the click's largest tensor (C/4×256², 16 MB at the published size)
        norm = d.mask_norm
        hidden = d.activation(torch.nn.functional.layer_norm(
            d.mask_conv1(image).permute(0, 2, 3, 1), norm.normalized_shape, norm.weight, norm.bias, norm.eps))

        hyper_hq = d.hq_mask_mlp(mask_tokens_out[:, :, d.num_mask_tokens - 1, :])  # B×P×C/8
        # hyper_hq · (mask_conv2(hidden) + hq_features), with mask_conv2 folded into one kernel per prompt
        hq_rows = hyper_hq.reshape(-1, c8)  # (B·P)×C/8
        kernel = torch.einsum("nc,cikl->nikl", hq_rows, d.mask_conv2.weight)  # (B·P)×C/4×3×3
        n, c4 = kernel.shape[:2]
        taps = (hidden.reshape(n, h * w, c4) @ kernel.reshape(n, c4, 9)).transpose(1, 2)  # each tap, unshifted
        taps = torch.nn.functional.pad(taps.reshape(n, 3, 3, h, w), (1, 1, 1, 1))
        conv = sum(taps[:, k, m, k:k + h, m:m + w] for k in range(3) for m in range(3))
        if hq_features.shape[0] == batch_size and batch_size != 1 and point_batch_size != 1:
            hq_features = hq_features.repeat_interleave(point_batch_size, 0)
        # one image's HQ features meet every prompt's row by broadcasting (no per-prompt copy of them)
        # (on the whole grid, then cropped: cropping the features first would copy them)
        hq = hq_features.reshape(hq_features.shape[0], c8, grid_h * grid_w)
        masks_hq = (conv + (hq_rows @ d.mask_conv2.bias)[:, None, None]
                    + (hq_rows[:, None, :] @ hq).reshape(-1, grid_h, grid_w)[:, :h, :w])
        masks_hq = masks_hq.reshape(batch_size, point_batch_size, 1, h, w)
        masks_sam = masks_sam.reshape(batch_size, point_batch_size, len(kept), h, w)
        return (masks_hq if hq_token_only else masks_sam + masks_hq), iou_pred

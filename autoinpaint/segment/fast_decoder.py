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

:func:`install` swaps a loaded model's decoder cross-attention modules for :class:`FoldedAttention`
wrappers (and segment_anything's channel LayerNorm for :class:`ChannelsLastNorm`), in place, once, from
the decoder graphs' constructors, so the PyTorch path and the exported ONNX graphs compute the same
function. Imported only where a model is loaded (it imports torch).
"""
from __future__ import annotations

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


class ChannelsLastNorm(nn.Module):
    """segment_anything's ``LayerNorm2d`` (over the channels of B×C×H×W) as a LayerNorm over the last
    axis between two permutes: the same values, without the strided channel reductions its exported
    graph makes (6.6 of 61 ms per click on ViT-B's output upscaling, one thread)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.train(inner.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.nn.functional.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.inner.weight,
                                           self.inner.bias, self.inner.eps)
        return y.permute(0, 3, 1, 2)


_CROSS = {"cross_attn_token_to_image": TO_IMAGE, "cross_attn_image_to_token": FROM_IMAGE,
          "final_attn_token_to_image": TO_IMAGE}


def install(mask_decoder: nn.Module) -> int:
    """Swap, in place, every cross-attention of a mask decoder's two-way transformer (its layers and its
    final attention) for a :class:`FoldedAttention`, and segment_anything's ``LayerNorm2d`` in its output
    upscaling for a :class:`ChannelsLastNorm`. A second call changes nothing. Returns how many it swapped."""
    swapped = 0
    upscaling = getattr(mask_decoder, "output_upscaling", None)
    if isinstance(upscaling, nn.Sequential):
        for i, child in enumerate(upscaling):
            if type(child).__name__ == "LayerNorm2d":
                upscaling[i] = ChannelsLastNorm(child)
                swapped += 1
    transformer = mask_decoder.transformer
    for parent in [transformer, *getattr(transformer, "layers", [])]:
        for name, direction in _CROSS.items():
            child = getattr(parent, name, None)
            if child is not None and not isinstance(child, FoldedAttention):
                setattr(parent, name, FoldedAttention(child, direction))
                swapped += 1
    return swapped

"""The prompt decoders' cross-attention folded through the prompt tokens (autoinpaint.segment.fast_decoder):
for every SAM family (segment-anything ``.pth``, also with ViT-B's decoder sizes, and the transformers SAM,
SAM-HQ, SAM 2.1 and EdgeTAM; tiny random models saved in their published formats, loaded through the real
loaders), the folded decoder gives the logits and IoU scores of the model's own modules (≤ 1e-4) for a click,
points + a negative + a box with a mask-input pass, and a dozen points (more tokens than the fold saves on).
Every transformers family's decoder graph gives the outputs of transformers' own model forward; SAM-HQ's
(given its HQ features, computed once per image) gives those of SAM-HQ's own decoder formula (SysCV/sam-hq
``MaskDecoderHQ``, written out below on transformers' modules), which upscales the transformer's output
where transformers 5.24's ``SamHQMaskDecoder`` upscales its input."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hf_sam_fixtures import FAMILIES, save_tiny  # noqa: E402
from sam_fixtures import record_decodes, save_sam_checkpoint, save_scene  # noqa: E402

torch = pytest.importorskip("torch")

from autoinpaint.models import embedding_cache  # noqa: E402
from autoinpaint.segment import SegmentParams, fast_decoder  # noqa: E402
from autoinpaint.selection import Selection  # noqa: E402

VIT_B_DECODER = dict(prompt_embed_dim=256, mask_in_chans=16, decoder_depth=2, decoder_mlp_dim=2048,
                     iou_head_depth=3, iou_head_hidden_dim=256)  # with the tiny image encoder
CASES = {
    "click": (Selection(points=((50, 40),)), SegmentParams()),
    "points+negative+box, refined": (Selection(points=((50, 40), (60, 45)), negatives=((35, 30),),
                                               boxes=((20, 15, 95, 75),)), SegmentParams(refine=1)),
    "12 points": (Selection(points=tuple((32 + 5 * i, 22 + 4 * i) for i in range(12))), SegmentParams()),
}


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fold_models")
    return {"pth": save_sam_checkpoint(root / "tiny_sam.pth"),
            "pth-vit-b-decoder": save_sam_checkpoint(root / "vit_b_decoder.pth", **VIT_B_DECODER),
            **{family: save_tiny(family, root / family) for family in FAMILIES}}


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOINPAINT_HOME", str(tmp_path))
    monkeypatch.delenv("AUTOINPAINT_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    embedding_cache._MEMORY.clear()
    yield tmp_path
    embedding_cache._MEMORY.clear()


def make(family: str, path: Path):
    from autoinpaint.segment.hf_sam import HFSamSegmenter
    from autoinpaint.segment.sam import SamSegmenter

    cls = SamSegmenter if family.startswith("pth") else HFSamSegmenter
    return cls(path, device="cpu", precision="fp32", cache=False, runtime="torch")


def computed_part(logits: np.ndarray) -> tuple[int, int]:
    """(rows, columns) of the logits a decoder computed: a SAM 1 click computes only the part of the grid the photo
    shows, the rest is fast_decoder.NOT_SHOWN; checked to be the grid's top-left part."""
    computed = (logits != fast_decoder.NOT_SHOWN).all(axis=(0, 1))
    rows, cols = int(computed[:, 0].sum()), int(computed[0].sum())
    assert computed[:rows, :cols].all() and computed.sum() == rows * cols
    return rows, cols


def shown_part(logits: np.ndarray, emb, seg) -> tuple[slice, ...]:
    """The logits a decoder computed (:func:`computed_part`), checked to hold every logit the photo's mask reads (the
    rows and columns it covers, and one more for the bilinear upsampling)."""
    rows, cols = computed_part(logits)
    side = logits.shape[-1]
    square = getattr(seg, "_square", None) or 0
    for n, got in zip(emb.input_size, (rows, cols)):
        assert got >= (min(side, int(np.ceil(n * side / square)) + 1) if square else side)
    return (slice(None), slice(None), slice(0, rows), slice(0, cols))


def folded(model) -> int:
    return sum(isinstance(m, fast_decoder.FoldedAttention) for m in model.modules())


@pytest.mark.parametrize("family", ("pth", "pth-vit-b-decoder", *(f for f in FAMILIES if f != "sam-hq")))
def test_the_folded_decoder_gives_the_logits_of_the_models_own_modules(family, weights, home, tmp_path, monkeypatch):
    scene = save_scene(tmp_path)[1]
    reference, fast = make(family, weights[family]), make(family, weights[family])
    assert reference.model is not fast.model
    emb = fast.embed(scene)
    takes_side = family not in ("sam2", "edgetam")
    # the image side comes with the embedding (embed, the web app's background thread), not with a click
    assert ("image_side" in emb.derived) == takes_side
    side = emb.derived.get("image_side")
    decoder = fast.model.mask_decoder
    layers = len(getattr(decoder, "inner", decoder).transformer.layers)
    expected, got = record_decodes(reference, monkeypatch), record_decodes(fast, monkeypatch)
    for name, (selection, params) in CASES.items():
        expected.clear()
        got.clear()
        with monkeypatch.context() as m:  # the reference's graphs are built from the model's own modules
            m.setattr(fast_decoder, "install", lambda model: 0)
            reference.predict(emb, selection, params)
        fast.predict(emb, selection, params)
        assert len(got) == len(expected) >= (2 if params.refine else 1), name
        for (la, ia), (lb, ib) in zip(expected, got):
            assert la.shape == lb.shape and ia.shape == ib.shape, name
            la, lb = la[shown_part(lb, emb, fast)], lb[shown_part(lb, emb, fast)]
            assert np.abs(la - lb).max() <= 1e-4 * max(1.0, np.abs(la).max()), (name, np.abs(la - lb).max())
            assert np.abs(ia - ib).max() <= 1e-4, name
            assert (la > 0).any() and (la <= 0).any(), name  # a mask with an edge: the comparison means something
    assert folded(reference.model) == 0
    assert folded(fast.model) == 2 * layers + 1  # two cross-attentions per layer and the final one
    # a click (no mask input) gave SAM's decoders the image side (the first layer's projections of the image)
    from autoinpaint.segment.onnx_decoder import Variant

    assert fast.decoder.graph(Variant(True, False, False, True)).takes_image_side == takes_side
    assert not fast.decoder.graph(Variant(True, False, True, False)).takes_image_side
    assert emb.derived.get("image_side") is side  # computed once per image
    assert fast_decoder.install(fast.model) == 0  # once


def test_each_fold_equals_its_attention_on_random_tensors():
    """Both directions, batched as segment-anything (B×L×C) and transformers (B×P×L×C) call them."""
    from segment_anything.modeling.transformer import Attention

    torch.manual_seed(0)
    inner = Attention(64, num_heads=4, downsample_rate=2).eval()
    with torch.no_grad():
        for p in inner.parameters():  # biases too: the folds must carry them
            p.normal_(0, 0.2)
        tokens, image, pe = torch.randn(3, 7, 64), torch.randn(3, 100, 64), torch.randn(3, 100, 64)
        to_image = fast_decoder.FoldedAttention(inner, fast_decoder.TO_IMAGE)
        from_image = fast_decoder.FoldedAttention(inner, fast_decoder.FROM_IMAGE)
        assert torch.allclose(to_image(q=tokens, k=image + pe, v=image), inner(q=tokens, k=image + pe, v=image),
                              atol=1e-5)
        assert torch.allclose(from_image(q=image + pe, k=tokens, v=tokens), inner(q=image + pe, k=tokens, v=tokens),
                              atol=1e-5)
        # transformers' layout: the image once (P = 1), the prompts in the point-batch axis
        t4, i4 = tokens[:1, None].expand(1, 2, 7, 64), image[:1, None]
        want = inner(q=t4.reshape(2, 7, 64), k=i4.expand(1, 2, 100, 64).reshape(2, 100, 64),
                     v=i4.expand(1, 2, 100, 64).reshape(2, 100, 64))
        assert torch.allclose(to_image(q=t4, k=i4, v=i4).reshape(2, 7, 64), want, atol=1e-5)


def sam_hq_reference_decoder(d):
    """SAM-HQ's own ``MaskDecoderHQ.forward`` + ``predict_masks`` (SysCV/sam-hq), on the submodules of
    transformers' ``SamHQMaskDecoder`` ``d`` (unfolded), returning what transformers' decoder returns."""

    class Reference(torch.nn.Module):
        def forward(self, image_embeddings, image_positional_embeddings, sparse_prompt_embeddings,
                    dense_prompt_embeddings, multimask_output, hq_token_only, intermediate_embeddings, **_):
            act, m = d.activation, d.num_mask_tokens  # m counts the HQ token
            vit = intermediate_embeddings[0].permute(0, 3, 1, 2)
            hq = (d.encoder_conv2(act(d.encoder_norm(d.encoder_conv1(image_embeddings))))
                  + d.compress_vit_conv2(act(d.compress_vit_norm(d.compress_vit_conv1(vit)))))
            b, p = sparse_prompt_embeddings.shape[:2]
            tokens = torch.cat([d.iou_token.weight, d.mask_tokens.weight, d.hq_token.weight]).repeat(b, p, 1, 1)
            tokens = torch.cat([tokens, sparse_prompt_embeddings], dim=2)
            src = (image_embeddings + dense_prompt_embeddings).repeat_interleave(p, 0)
            c, h, w = src.shape[1:]
            hs, src = d.transformer(point_embeddings=tokens, image_embeddings=src,
                                    image_positional_embeddings=image_positional_embeddings.repeat_interleave(p, 0),
                                    attention_similarity=None)
            src = src.transpose(2, 3).reshape(b * p, c, h, w)
            up = act(d.upscale_conv2(act(d.upscale_layer_norm(d.upscale_conv1(src)))))
            up_hq = d.mask_conv2(act(d.mask_norm(d.mask_conv1(up)))) + hq
            hyper = torch.stack([d.output_hypernetworks_mlps[i](hs[:, :, 1 + i]) for i in range(m - 1)]
                                + [d.hq_mask_mlp(hs[:, :, m])], dim=2)
            n = up.shape[-2] * up.shape[-1]
            masks_sam = (hyper[:, :, :m - 1] @ up.reshape(b, p, -1, n)).reshape(b, p, -1, *up.shape[-2:])
            masks_hq = (hyper[:, :, m - 1:] @ up_hq.reshape(b, p, -1, n)).reshape(b, p, -1, *up.shape[-2:])
            iou = d.iou_prediction_head(hs[:, :, 0])
            if multimask_output:  # transformers returns the candidates sorted by IoU (SAM-HQ's code keeps the best)
                iou, order = torch.sort(iou[:, :, 1:m - 1], dim=2, descending=True)
                masks_sam = torch.gather(masks_sam[:, :, 1:m - 1], 2,
                                         order[..., None, None].expand(-1, -1, -1, *up.shape[-2:]))
            else:
                iou, masks_sam = iou[:, :, :1], masks_sam[:, :, :1]
            return masks_sam + masks_hq, iou

    return Reference()


@pytest.mark.parametrize("family", FAMILIES)
def test_each_transformers_family_gives_the_outputs_of_transformers_own_model(family, weights, home, tmp_path):
    """The decoder graph (folded; SAM-HQ given its HQ features; SAM 2's high-resolution maps not
    expanded) against transformers' own model forward on the encoder's outputs (SAM-HQ: with SAM-HQ's own
    decoder formula), several prompts at once."""
    from autoinpaint.segment.onnx_decoder import Variant

    scene = save_scene(tmp_path)[1]
    reference, fast = make(family, weights[family]), make(family, weights[family])
    if family == "sam-hq":
        reference.model.mask_decoder = sam_hq_reference_decoder(reference.model.mask_decoder)
    emb = fast.embed(scene)
    pixels = fast.processor(images=scene, return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        out = reference.model.get_image_embeddings(pixels)
    side = fast.image_size
    rng = np.random.default_rng(0)
    cases = [(Variant(True, False, False, True), 1, 2), (Variant(True, True, True, False), 3, 4),
             (Variant(True, False, False, False), 2, 12)]
    for variant, prompts, points in cases:
        coords = torch.from_numpy((rng.random((prompts, points, 2)) * side).astype(np.float32))
        labels = torch.from_numpy(rng.integers(0, 2, (prompts, points)))
        labels[:, 0] = 1
        kwargs = {"coords": coords, "labels": labels}
        if variant.boxes:
            kwargs["boxes"] = torch.tensor([[4.0, 6.0, side * 0.7, side * 0.8]] * prompts)
        if variant.mask:
            grid = fast._example_embedding(variant)["features"].shape[-2:]
            kwargs["mask_input"] = torch.randn(prompts, 1, *grid) * 4
            kwargs["mask_input"] = torch.nn.functional.interpolate(kwargs["mask_input"], scale_factor=4)
        expand = lambda t: t.expand(prompts, *t.shape[1:])  # noqa: E731
        if family == "sam-hq":
            given = {"image_embeddings": expand(out[0]), "intermediate_embeddings": [expand(out[1][0])]}
        elif fast.family.multiscale:
            given = {"image_embeddings": [expand(t) for t in out]}
        else:
            given = {"image_embeddings": expand(out)}
        masks = kwargs.get("mask_input")
        if masks is not None and fast.family.multiscale:
            masks = masks.clamp(-32.0, 32.0)
        with torch.inference_mode():
            # what the segmenter feeds the graph (SAM, SAM-HQ without a mask input: the image side)
            got_logits, got_iou = fast.decoder.graph(variant)(**fast._decoder_inputs(emb, variant), **kwargs)
            want = reference.model(**given, input_points=coords[:, None], input_labels=labels[:, None],
                                   input_boxes=kwargs["boxes"][:, None] if variant.boxes else None,
                                   input_masks=masks, multimask_output=variant.multimask)
        want_logits, want_iou = want.pred_masks[:, 0], want.iou_scores[:, 0]
        assert got_logits.shape == want_logits.shape and got_iou.shape == want_iou.shape
        scale = max(1.0, float(want_logits.abs().max()))
        assert float((got_logits - want_logits).abs().max()) <= 1e-4 * scale, variant
        assert float((got_iou - want_iou).abs().max()) <= 1e-4, variant
        assert (want_logits > 0).any() and (want_logits <= 0).any()
    assert folded(fast.model) > 0 and folded(reference.model) == 0
    assert isinstance(fast.model.mask_decoder, fast_decoder.GivenHQFeatures) == (family == "sam-hq")
    # SAM and SAM-HQ without a mask input were given the image side (the first layer's image projections)
    assert {v: fast.decoder.graph(v).takes_image_side for v, _, _ in cases} == {
        v: family in ("sam", "sam-hq") and not v.mask for v, _, _ in cases}
    if family == "sam-hq":
        assert set(emb.tensors) == {"features", "hq_features"}


@pytest.mark.parametrize("family", ("pth", "sam", "sam-hq"))
@pytest.mark.parametrize("runtime", ("torch", "onnx"))
def test_a_click_upscales_only_what_the_photo_shows_with_the_same_mask(family, runtime, weights, home, tmp_path):
    """SAM 1 pads the resized photo to a square: a click (points, or points and a box) without a mask input computes
    the logits of the part of the grid the photo shows (fast_decoder.SHOWN), and gives the mask and scores of the
    whole grid's logits."""
    from PIL import Image

    from autoinpaint.segment.hf_sam import HFSamSegmenter
    from autoinpaint.segment.onnx_decoder import Variant
    from autoinpaint.segment.sam import SamSegmenter

    if runtime == "onnx":
        pytest.importorskip("onnxruntime")
    cls = SamSegmenter if family == "pth" else HFSamSegmenter
    seg = cls(weights[family], device="cpu", precision="fp32", cache=False, runtime=runtime)
    # 128×84: resized to 64×42 of the tiny models' 64-pixel square, where the rows the post-processing reads past
    # the photo (and SAM-HQ's convolutions past those) reach into one more token row
    landscape = np.asarray(Image.fromarray(save_scene(tmp_path)[1]).resize((128, 84)))
    for image in (landscape, np.ascontiguousarray(landscape.transpose(1, 0, 2))):
        emb = seg.embed(image)
        h, w = image.shape[:2]
        points = [np.array([[w * 0.45, h * 0.5], [w * 0.1, h * 0.9]], np.float32)]
        labels = [np.array([1, 0], np.float32)]
        box = np.array([[w * 0.2, h * 0.25, w * 0.7, h * 0.75]], np.float32)
        for multimask, boxes in ((False, None), (True, None), (False, box)):
            part, part_iou = seg._decode(emb, points, labels, boxes, multimask, None, False)
            whole, whole_iou = seg._decode(emb, points, labels, boxes, multimask, None, True)
            assert seg.decoder.last_runtime == runtime
            rows, cols = computed_part(part)
            grid = part.shape[-1]
            short = min(rows, cols)
            assert short < grid and max(rows, cols) == grid  # the padded side was left out ...
            # ... the photo's side kept, with the row the bilinear upsampling reads past it and one of margin, each
            # exact (the last two computed rows are not: SAM-HQ's 3×3 convolutions read past them)
            exact = [n - 2 if n < grid else n for n in (rows, cols)]
            covered = int(np.ceil(min(emb.input_size) * grid / seg._square))
            assert min(exact) >= covered + 2
            assert np.abs(part[..., :exact[0], :exact[1]] - whole[..., :exact[0], :exact[1]]).max() <= 1e-5
            assert np.abs(part_iou - whole_iou).max() <= 1e-6
            for k in range(part.shape[1]):
                want = seg._upscale(emb, whole[:, k])
                assert want.any() and not want.all()  # a mask with an edge
                assert np.array_equal(seg._upscale(emb, part[:, k]), want)
    # the decoder graph of a click takes the shown part; one with a mask input computes the whole grid
    assert seg.decoder.graph(Variant(True, False, False, True)).takes_image_side
    assert not seg.decoder.graph(Variant(True, False, True, False)).takes_image_side


def test_the_shown_part_of_sam_1s_grid_at_the_published_size():
    """SAM ViT-B/L/H and SAM-HQ: 1024-pixel square, 64×64 tokens, 256×256 logits."""
    assert fast_decoder.shown_tokens((768, 1024), 1024, 64) == (49, 64)  # 4:3: 196 of 256 logit rows
    assert fast_decoder.shown_tokens((1024, 768), 1024, 64) == (64, 49)
    assert fast_decoder.shown_tokens((683, 1024), 1024, 64) == (44, 64)  # 3:2
    assert fast_decoder.shown_tokens((1024, 1024), 1024, 64) == (64, 64)
    assert fast_decoder.shown_tokens((16, 1024), 1024, 64) == (2, 64)

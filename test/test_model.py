"""Network shapes, output ranges, init priors and positional encodings (CPU, tiny sizes)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from mhr2_ros.config import load_model_config
from mhr2_ros.errors import ConfigError
from mhr2_ros.geometry import IDENTITY_6D, depth_from_nearness
from mhr2_ros.model import OUTPUT_KEYS, PIXEL_MEAN, PIXEL_STD, MultiHMR2, ViTEncoder, build_model
from mhr2_ros.model.decoder import sincos_pos_embed_2d
from mhr2_ros.model.rope import apply_rope, rope_periods, rope_sin_cos


@pytest.fixture(scope="module")
def tiny():
    return load_model_config("tiny")


@pytest.fixture(scope="module")
def tiny_model(tiny):
    torch.manual_seed(0)
    return build_model(tiny).eval()


def small_cfg(tiny, **changes):
    """The tiny preset, shallower and with small heads, for the many variant tests."""
    base = dict(encoder_depth=2, decoder_depth=1, num_queries=6, num_bones=5,
                track_dim=32, head_hidden=64)
    return dataclasses.replace(tiny, **{**base, **changes})


def check_outputs(out, cfg, batch, height, width):
    """The output contract of heads.py, for a (batch, 3, height, width) input."""
    n = cfg.num_queries
    assert set(out) == set(OUTPUT_KEYS)
    expected = {
        "fov": (batch,), "logits": (batch, n), "loc": (batch, n, 2), "nearness": (batch, n),
        "rot6d": (batch, n, cfg.num_bones, 6), "shape": (batch, n, cfg.num_shape),
        "track": (batch, n, cfg.track_dim),
    }
    for key, shape in expected.items():
        assert tuple(out[key].shape) == shape, key
        assert torch.isfinite(out[key]).all(), key
    u, v = out["loc"][..., 0], out["loc"][..., 1]
    assert (u >= 0).all() and (u <= width).all() and (v >= 0).all() and (v <= height).all()
    fov = out["fov"]
    assert (fov >= math.radians(cfg.fov_min_deg)).all() and (fov <= math.radians(cfg.fov_max_deg)).all()
    assert (out["shape"] >= 0).all() and (out["shape"] <= 1).all()


@pytest.mark.parametrize("hw", [(256, 448), (448, 256)], ids=["landscape", "portrait"])
def test_tiny_forward_contract(tiny, tiny_model, hw):
    images = torch.randn(2, 3, *hw)
    with torch.no_grad():
        out = tiny_model(images)
    check_outputs(out, tiny, 2, *hw)
    # loc is (u, v): at init it sits near the image centre, so u ~ W/2 and v ~ H/2
    centre = torch.tensor([hw[1] / 2, hw[0] / 2])
    assert torch.allclose(out["loc"].mean(dim=(0, 1)), centre, rtol=0.2)


@pytest.mark.parametrize(
    "pos_embed,registers,patch,hw",
    [("rope", 0, 16, (64, 112)), ("rope", 4, 16, (112, 64)), ("learned", 0, 14, (56, 98)),
     ("learned", 4, 14, (98, 56)), ("rope", 4, 14, (70, 42)), ("learned", 4, 16, (48, 80))],
)
def test_encoder_variants(tiny, pos_embed, registers, patch, hw):
    cfg = small_cfg(tiny, pos_embed=pos_embed, num_registers=registers, patch_size=patch,
                    pos_embed_grid=5)
    torch.manual_seed(0)
    model = MultiHMR2(cfg).eval()
    images = torch.randn(1, 3, *hw)
    with torch.no_grad():
        cls, patches, grid = model.encode(images)
        out = model(images)
    hp, wp = hw[0] // patch, hw[1] // patch
    assert grid == (hp, wp)
    assert cls.shape == (1, cfg.encoder_dim) and patches.shape == (1, hp * wp, cfg.encoder_dim)
    check_outputs(out, cfg, 1, *hw)
    has_table = model.encoder.pos_embed is not None
    assert has_table == (pos_embed == "learned")
    if has_table:
        assert model.encoder.pos_embed.shape == (1, 1 + 25, cfg.encoder_dim)
    n_reg = 0 if model.encoder.register_tokens is None else model.encoder.register_tokens.shape[1]
    assert n_reg == registers


def test_conv_stem_gives_one_token_per_patch(tiny):
    """patch_embed "conv": 4 stride-2 convolutions (widths dim/8 .. dim) and a 1x1 projection
    give the same token grid as the linear patch embedding, each token seeing beyond its patch."""
    cfg = small_cfg(tiny, patch_embed="conv")
    torch.manual_seed(0)
    model = MultiHMR2(cfg).eval()
    convs = [m for m in model.encoder.patch_embed.stem if isinstance(m, torch.nn.Conv2d)]
    d = cfg.encoder_dim
    assert [c.out_channels for c in convs] == [d // 8, d // 4, d // 2, d]
    assert all(c.stride == (2, 2) and c.kernel_size == (3, 3) for c in convs)
    images = torch.randn(1, 3, 64, 112)
    with torch.no_grad():
        cls, patches, grid = model.encode(images)
        check_outputs(model(images), cfg, 1, 64, 112)
    assert grid == (4, 7) and patches.shape == (1, 28, d)
    # overlapping receptive fields: a pixel just outside patch (0, 0) changes its token
    stem = model.encoder.patch_embed
    bumped = images.clone()
    bumped[..., 5, 17] += 10.0  # column 17 belongs to patch (0, 1)
    with torch.no_grad():
        before, after = stem(images)[0][0, 0], stem(bumped)[0][0, 0]
    assert not torch.allclose(before, after)


@pytest.mark.parametrize("changes,match", [(dict(patch_embed="conv", patch_size=14), "patch_size 16"),
                                           (dict(patch_embed="mlp"), "'linear' or 'conv'")])
def test_conv_stem_config_errors(tiny, changes, match):
    with pytest.raises(ConfigError, match=match):
        dataclasses.replace(tiny, **changes)


def test_init_priors(tiny, tiny_model):
    """A fresh network predicts rest pose, mid shape, rare detections, people ~4 m away."""
    with torch.no_grad():
        out = tiny_model(torch.randn(1, 3, 256, 448))
    identity = torch.tensor(IDENTITY_6D)
    assert (out["rot6d"] - identity).abs().max() < 0.05
    assert torch.allclose(out["shape"], torch.full_like(out["shape"], 0.5), atol=0.05)
    assert torch.sigmoid(out["logits"]).max() < 0.05
    depth = depth_from_nearness(out["nearness"], tiny.nearness_ref_focal, tiny.nearness_ref_focal)
    assert (depth > 3.0).all() and (depth < 5.0).all()


@pytest.mark.parametrize("shape", [(1, 3, 250, 448), (1, 3, 256, 440), (1, 1, 256, 448), (3, 256, 448)])
def test_bad_image_shape_raises(tiny_model, shape):
    with pytest.raises(ValueError, match=r"\(" + ", ".join(map(str, shape)) + r"\)"):
        tiny_model(torch.zeros(shape))


def test_split_methods_compose_to_forward(tiny_model):
    images = torch.randn(1, 3, 448, 256)
    with torch.no_grad():
        full = tiny_model(images)
        cls, patches, grid = tiny_model.encode(images)
        decoded = tiny_model.decode(patches, grid)
        staged = tiny_model.predict_heads(decoded, cls, (448, 256))
    assert decoded.queries.shape == (1, tiny_model.cfg.num_queries, tiny_model.cfg.decoder_dim)
    for key in OUTPUT_KEYS:
        assert torch.equal(full[key], staged[key]), key


def test_heads_run_in_full_precision_under_autocast(tiny):
    model = MultiHMR2(small_cfg(tiny)).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(1, 3, 64, 96))
    assert all(out[key].dtype == torch.float32 for key in OUTPUT_KEYS)


def test_queries_are_permutation_equivariant(tiny):
    """No query has a privileged index: permuting the embeddings permutes the outputs."""
    cfg = small_cfg(tiny, decoder_depth=2)
    torch.manual_seed(0)
    model = MultiHMR2(cfg).eval()
    images = torch.randn(1, 3, 64, 96)
    perm = torch.randperm(cfg.num_queries)
    with torch.no_grad():
        ref = model(images)
        model.decoder.query_embed.copy_(model.decoder.query_embed[perm])
        if cfg.query_points:  # a query is its embedding and its reference point
            model.decoder.query_points.copy_(model.decoder.query_points[perm])
        out = model(images)
    for key in OUTPUT_KEYS:
        if key == "fov":
            assert torch.equal(out[key], ref[key])
        else:
            torch.testing.assert_close(out[key], ref[key][:, perm], atol=1e-5, rtol=1e-5)


def test_all_attention_goes_through_sdpa(tiny, monkeypatch):
    cfg = small_cfg(tiny, encoder_depth=3, decoder_depth=2)
    model = MultiHMR2(cfg).eval()
    calls = []
    real = torch.nn.functional.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counting)
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
    assert len(calls) == cfg.encoder_depth + 2 * cfg.decoder_depth  # self + cross per block


def test_learned_pos_embed_at_native_grid_is_the_table(tiny):
    cfg = small_cfg(tiny, pos_embed="learned", patch_size=14, pos_embed_grid=4)
    encoder = ViTEncoder(cfg)
    cls_pos, patch_pos = encoder.learned_pos_embed((4, 4))
    assert torch.equal(torch.cat([cls_pos, patch_pos], 1), encoder.pos_embed)
    for hp in range(1, 13):  # any grid, any aspect ratio
        for wp in (1, 3, 7, 12):
            _, table = encoder.learned_pos_embed((hp, wp))
            assert table.shape == (1, hp * wp, cfg.encoder_dim)


def test_rope_periods_follow_dinov3():
    # DINOv3: periods = base ** (2 k / (Dh / 2)), k < Dh / 4
    dh, base = 64, 100.0
    expected = base ** (2 * torch.arange(dh // 4, dtype=torch.float64) / (dh // 2))
    torch.testing.assert_close(rope_periods(dh, base), expected.float())


def test_rope_angle_layout_follows_dinov3():
    """Angles: Dh/4 y-frequencies then Dh/4 x-frequencies, the Dh/2 block repeated."""
    dh, base, (hp, wp) = 16, 100.0, (3, 5)
    sin, cos = rope_sin_cos((hp, wp), dh, base)
    periods = rope_periods(dh, base)
    r, c = 2, 1  # patch at row 2, column 1 -> token r * wp + c
    y, x = (r + 0.5) / hp * 2 - 1, (c + 0.5) / wp * 2 - 1
    half = torch.cat([2 * math.pi * y / periods, 2 * math.pi * x / periods])
    angles = torch.cat([half, half])
    torch.testing.assert_close(sin[r * wp + c], angles.sin())
    torch.testing.assert_close(cos[r * wp + c], angles.cos())


def test_rope_is_relative_and_skips_prefix_tokens():
    torch.manual_seed(0)
    dh, grid, prefix = 16, (4, 5), 3
    sin, cos = rope_sin_cos(grid, dh, 100.0)
    assert sin.shape == (20, dh)
    q = torch.randn(1, 1, 1, dh).expand(1, 1, prefix + 20, dh)  # same vector at every token
    k = torch.randn(1, 1, 1, dh).expand(1, 1, prefix + 20, dh)
    rq, rk = apply_rope(q, sin, cos), apply_rope(k, sin, cos)
    assert torch.equal(rq[:, :, :prefix], q[:, :, :prefix])  # cls / registers untouched
    torch.testing.assert_close(rq.norm(dim=-1), q.norm(dim=-1))  # rotations keep norms

    def score(a, b):  # token index of patch (row a[0], col a[1]) -> q.k after rope
        i, j = prefix + a[0] * grid[1] + a[1], prefix + b[0] * grid[1] + b[1]
        return (rq[0, 0, i] * rk[0, 0, j]).sum()

    # the same displacement (1 row, 2 columns) gives the same score anywhere on the grid
    torch.testing.assert_close(score((0, 0), (1, 2)), score((2, 2), (3, 4)), atol=1e-5, rtol=1e-5)


def test_fresh_queries_point_at_their_reference_points(tiny):
    cfg = small_cfg(tiny)
    assert cfg.query_points
    model = MultiHMR2(cfg).eval()
    with torch.no_grad():
        model.query_heads.loc.fc2.weight.zero_()  # no offset: loc = reference point
        out = model(torch.randn(2, 3, 64, 96))
    expected = model.decoder.reference_points() * torch.tensor([96.0, 64.0])
    torch.testing.assert_close(out["loc"], expected.expand(2, -1, -1))
    assert (expected[:, 0] > 0.04 * 96).all() and (expected[:, 0] < 0.96 * 96).all()


def test_spatial_prior_is_gaussian_around_each_point_for_the_first_heads(tiny):
    cfg = small_cfg(tiny, decoder_heads=4, query_point_sigmas=(0.1, 0.2))
    decoder = MultiHMR2(cfg).decoder
    points = torch.tensor([[[0.125, 0.25]]])  # (x, y) = centre of patch (col 0, row 0) of a 2x4 grid
    bias = decoder._spatial_prior(points, (2, 4))  # (1, heads, 1, 8)
    assert bias.shape == (1, 4, 1, 8)
    assert bias[0, 0, 0, 0] == 0 and bias[0, 1, 0, 0] == 0  # at the point: no penalty
    far = (0.875 - 0.125) ** 2 + (0.75 - 0.25) ** 2  # last patch (col 3, row 1)
    torch.testing.assert_close(bias[0, 0, 0, 7], torch.tensor(-far / (2 * 0.1**2)))
    torch.testing.assert_close(bias[0, 1, 0, 7], torch.tensor(-far / (2 * 0.2**2)))
    assert (bias[0, 2:] == 0).all()  # free heads
    with pytest.raises(ConfigError):
        small_cfg(tiny, decoder_heads=2, query_point_sigmas=(0.1, 0.2, 0.3))


def test_sincos_encoding_of_points_matches_the_grid():
    from mhr2_ros.model.decoder import sincos_encode_points

    grid = sincos_pos_embed_2d((4, 6), 32)  # row-major patches, centres at (i + 0.5) / n
    point = torch.tensor([[(2 + 0.5) / 6, (1 + 0.5) / 4]])  # x of column 2, y of row 1
    torch.testing.assert_close(sincos_encode_points(point, 32)[0], grid[1 * 6 + 2])


def test_sincos_pos_embed_any_grid():
    for grid in [(3, 7), (7, 3), (1, 1)]:
        pos = sincos_pos_embed_2d(grid, 32)
        assert pos.shape == (grid[0] * grid[1], 32) and torch.isfinite(pos).all()
    pos = sincos_pos_embed_2d((4, 6), 32)
    assert torch.unique(pos, dim=0).shape[0] == 24  # every patch gets its own code


def test_pixel_statistics_are_imagenet():
    assert PIXEL_MEAN == (0.485, 0.456, 0.406) and PIXEL_STD == (0.229, 0.224, 0.225)


def test_query_selection_puts_the_queries_on_the_best_local_maxima(tiny):
    """Two-stage mode: the reference points are the proposals of the best 3x3 peaks of
    each image, non-peaks only after every peak, detached from the proposal head."""
    from mhr2_ros.model.decoder import select_proposals

    logits = torch.tensor([[0.0, 5.0, 4.0, -1.0, -2.0, 3.0],  # 2x3 grid: 5 is the only peak...
                           [9.0, -9.0, -9.0, -9.0, -9.0, 8.0]])  # ...here 9 and 8 are both peaks
    points = torch.arange(12.0).reshape(2, 6, 1).expand(-1, -1, 2) / 12
    chosen = select_proposals(logits, points, (2, 3), 2)
    torch.testing.assert_close(chosen[0], points[0, [1, 2]])  # peak, then the best non-peak
    torch.testing.assert_close(chosen[1], points[1, [0, 5]])

    cfg = small_cfg(tiny, query_selection=True)
    model = MultiHMR2(cfg).eval()
    images = torch.randn(2, 3, 64, 96)
    out = model(images)
    check_outputs({k: v for k, v in out.items() if not k.startswith("proposal_")}, cfg, 2, 64, 96)
    assert out["proposal_logits"].shape == (2, 24) and out["proposal_loc"].shape == (2, 24, 2)
    assert torch.sigmoid(out["proposal_logits"]).max() < 0.05  # the focal prior
    _, patches, grid = model.encode(images)
    decoded = model.decode(patches, grid)
    assert not decoded.points.requires_grad
    expected = select_proposals(decoded.proposals["logits"], decoded.proposals["points"], grid, cfg.num_queries)
    torch.testing.assert_close(decoded.points, expected)
    with pytest.raises(ConfigError, match="query_points"):
        small_cfg(tiny, query_selection=True, query_points=False)


def test_proposal_content_starts_each_query_as_its_selected_token(tiny):
    """proposal_content: a query's initial content is its learned embedding plus the
    normalised image token its reference point was selected from (two-stage DETR)."""
    from mhr2_ros.model.decoder import proposal_indices

    cfg = small_cfg(tiny, query_selection=True, proposal_content=True)
    torch.manual_seed(0)
    model = MultiHMR2(cfg).eval()
    model.decoder.blocks = torch.nn.ModuleList()  # no blocks: the output is the initial content, normed
    images = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        _, patches, grid = model.encode(images)
        decoded = model.decode(patches, grid)
        tokens = model.decoder.proposal_norm(model.decoder.input_proj(patches))  # (2, 24, Dd)
        idx = proposal_indices(decoded.proposals["logits"], grid, cfg.num_queries)
        expected = model.decoder.query_embed[None] + torch.stack([tokens[b, idx[b]] for b in range(2)])
    torch.testing.assert_close(decoded.queries, model.decoder.norm(expected))
    with pytest.raises(ConfigError, match="query_selection"):
        small_cfg(tiny, proposal_content=True)


def test_ray_rotation_takes_the_optical_axis_onto_each_pixel_ray():
    from mhr2_ros.geometry import ray_rotation

    K = torch.tensor([[200.0, 0, 160], [0, 200.0, 120], [0, 0, 1]])
    pixels = torch.tensor([[160.0, 120.0], [300.0, 20.0], [0.0, 239.0]])
    R = ray_rotation(pixels, K.expand(3, 3, 3))
    rays = torch.nn.functional.normalize(torch.cat([(pixels - K[:2, 2]) / 200.0, torch.ones(3, 1)], 1), dim=1)
    torch.testing.assert_close(R[..., 2], rays)  # R z = the ray
    torch.testing.assert_close(R[0], torch.eye(3))  # the principal point: no rotation
    torch.testing.assert_close(R @ R.transpose(1, 2), torch.eye(3).expand(3, 3, 3), atol=1e-6, rtol=0)
    assert torch.allclose(torch.linalg.det(R), torch.ones(3))
    # smallest rotation: its axis z x ray is perpendicular to both, so x stays in the x-z plane for a horizontal ray
    side = ray_rotation(torch.tensor([[300.0, 120.0]]), K[None])[0]
    torch.testing.assert_close(side[:, 1], torch.tensor([0.0, 1.0, 0.0]))


def test_ray_root_frame_rotates_only_the_root_by_the_ray_of_each_query(tiny):
    """root_frame "ray": the outputs stay in the camera frame; the root is the head's
    (ray-relative) root turned by the viewing ray of the query's pelvis, under the given K
    or, without one, the predicted FOV. Other bones are untouched."""
    from mhr2_ros.geometry import intrinsics_from_fov_batch, ray_rotation, rotation_6d_to_matrix

    torch.manual_seed(0)
    cam_model = MultiHMR2(small_cfg(tiny)).eval()
    ray_model = MultiHMR2(small_cfg(tiny, root_frame="ray")).eval()
    ray_model.load_state_dict(cam_model.state_dict())  # same weights: same head outputs
    images = torch.randn(2, 3, 64, 96)
    K = torch.tensor([[80.0, 0, 40], [0, 80.0, 30], [0, 0, 1]]).expand(2, 3, 3)
    with torch.no_grad():
        plain, given, predicted = cam_model(images), ray_model(images, K=K), ray_model(images)
    torch.testing.assert_close(given["rot6d"][:, :, 1:], plain["rot6d"][:, :, 1:])
    for out, cams in ((given, K), (predicted, intrinsics_from_fov_batch(plain["fov"], 96, 64))):
        R = ray_rotation(plain["loc"], cams[:, None])
        expected = R @ rotation_6d_to_matrix(plain["rot6d"][:, :, 0])
        torch.testing.assert_close(rotation_6d_to_matrix(out["rot6d"][:, :, 0]), expected, atol=1e-5, rtol=0)
    with pytest.raises(ConfigError, match="root_frame"):
        small_cfg(tiny, root_frame="world")


def test_vit_attention_matches_torch_multihead_attention():
    """DINO's fused qkv rows are [q; k; v], each split into heads in order: torch's own
    MultiheadAttention uses the same in_proj layout, so it is an independent reference.
    Kills: splitting qkv as (heads, 3, Dh) instead of (3, heads, Dh) (pretrained DINO weights
    would load without error and compute garbage)."""
    from mhr2_ros.model.vit import Attention

    torch.manual_seed(0)
    dim, heads = 48, 3
    attn = Attention(dim, heads).eval()
    ref = torch.nn.MultiheadAttention(dim, heads, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(attn.qkv.weight)
        ref.in_proj_bias.copy_(attn.qkv.bias)
        ref.out_proj.weight.copy_(attn.proj.weight)
        ref.out_proj.bias.copy_(attn.proj.bias)
        x = torch.randn(2, 7, dim)
        torch.testing.assert_close(attn(x), ref(x, x, x, need_weights=False)[0], atol=1e-5, rtol=1e-5)


def test_rope_rotates_each_pair_forward_by_its_angle():
    """DINOv3: x * cos + rotate_half(x) * sin with rotate_half([x1, x2]) = [-x2, x1], so the pair
    (x_i, x_{i + Dh/2}) turns by +angle. Kills: rotate_half returning [x2, -x1] (rotation by -angle:
    still relative and norm-preserving, so test_rope_is_relative_and_skips_prefix_tokens passes)."""
    dh = 8
    sin, cos = rope_sin_cos((3, 1), dh, 100.0)  # 3 patch tokens, no prefix
    x = torch.zeros(1, 1, 3, dh)
    x[..., 0] = 1.0  # first y-frequency pair: (x_0, x_4)
    out = apply_rope(x, sin, cos)[0, 0]
    theta = torch.atan2(sin[:, 0], cos[:, 0])
    assert theta.sin().abs().max() > 0.5  # non-trivial angles (rows 0 and 2: ±120 degrees)
    torch.testing.assert_close(out[:, 0], theta.cos())
    torch.testing.assert_close(out[:, 4], theta.sin())
    assert out[:, [1, 2, 3, 5, 6, 7]].abs().max() < 1e-7

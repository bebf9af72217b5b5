"""Loading DINOv2 / DINOv3 backbones in the four layouts, and every strict-load error.

Each test writes a file in a foreign layout, converted from a second randomly
initialised encoder by mappings written here (independently of dino_layouts.py),
loads it and compares parameters and forward outputs.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import save_file

from mhr2_ros.checkpoint import load_checkpoint
from mhr2_ros.cli import main
from mhr2_ros.config import load_model_config
from mhr2_ros.errors import CheckpointError
from mhr2_ros.model import ViTEncoder, load_dino_backbone
from mhr2_ros.model import dino_layouts

def v2_cfg(**changes):
    """DINOv2-like: patch 14, learned position table (small grid to stay fast)."""
    base = dict(patch_size=14, pos_embed="learned", pos_embed_grid=4, encoder_depth=2,
                num_registers=4)
    return dataclasses.replace(load_model_config("tiny"), **{**base, **changes})


def v3_cfg(**changes):
    """DINOv3-like: patch 16, RoPE, 4 storage tokens."""
    base = dict(patch_size=16, pos_embed="rope", encoder_depth=2, num_registers=4)
    return dataclasses.replace(load_model_config("tiny"), **{**base, **changes})


def random_encoder(cfg, seed, zero_k_bias=False):
    """An encoder whose every parameter is random (LayerScale included)."""
    torch.manual_seed(seed)
    encoder = ViTEncoder(cfg).eval()
    with torch.no_grad():
        for param in encoder.parameters():
            param.copy_(torch.randn_like(param) * 0.1)
        if zero_k_bias:  # DINOv3 has no key bias
            d = cfg.encoder_dim
            for block in encoder.blocks:
                block.attn.qkv.bias[d : 2 * d] = 0
    return encoder


def ours(encoder):
    return {k: v.detach().clone() for k, v in encoder.state_dict().items()}


# ------------------------------------------------------------ converters (test's own)
def to_meta_dinov2(encoder):
    sd = ours(encoder)
    sd["mask_token"] = torch.zeros(1, encoder.cfg.encoder_dim)
    return sd


def to_meta_dinov3(encoder):
    cfg, sd = encoder.cfg, ours(encoder)
    d, dh = cfg.encoder_dim, cfg.encoder_dim // cfg.encoder_heads
    if "register_tokens" in sd:
        sd["storage_tokens"] = sd.pop("register_tokens")
    sd["mask_token"] = torch.zeros(1, d)
    sd["rope_embed.periods"] = cfg.rope_base ** (2 * torch.arange(dh // 4) / (dh // 2))
    for i in range(cfg.encoder_depth):
        mask = torch.ones(3 * d)
        mask[d : 2 * d] = 0
        sd[f"blocks.{i}.attn.qkv.bias_mask"] = mask
        sd[f"blocks.{i}.attn.qkv.bias"][d : 2 * d] = 7.0  # masked out: must not load
    return sd


def to_hf_dinov2(encoder):
    cfg, sd = encoder.cfg, ours(encoder)
    d = cfg.encoder_dim
    out = {"embeddings.cls_token": sd["cls_token"], "embeddings.mask_token": torch.zeros(1, d),
           "embeddings.position_embeddings": sd["pos_embed"],
           "embeddings.patch_embeddings.projection.weight": sd["patch_embed.proj.weight"],
           "embeddings.patch_embeddings.projection.bias": sd["patch_embed.proj.bias"],
           "layernorm.weight": sd["norm.weight"], "layernorm.bias": sd["norm.bias"]}
    if "register_tokens" in sd:
        out["embeddings.register_tokens"] = sd["register_tokens"]
    names = {"norm1": "norm1", "attn.proj": "attention.output.dense", "norm2": "norm2",
             "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}
    for i in range(cfg.encoder_depth):
        src, dst = f"blocks.{i}.", f"encoder.layer.{i}."
        for p in ("weight", "bias"):
            qkv = sd[f"{src}attn.qkv.{p}"]
            for j, name in enumerate(("query", "key", "value")):
                out[f"{dst}attention.attention.{name}.{p}"] = qkv[j * d : (j + 1) * d]
            for a, b in names.items():
                out[f"{dst}{b}.{p}"] = sd[f"{src}{a}.{p}"]
        out[f"{dst}layer_scale1.lambda1"] = sd[f"{src}ls1.gamma"]
        out[f"{dst}layer_scale2.lambda1"] = sd[f"{src}ls2.gamma"]
    return out


def to_hf_dinov3(encoder):
    cfg, sd = encoder.cfg, ours(encoder)
    d = cfg.encoder_dim
    out = {"embeddings.cls_token": sd["cls_token"], "embeddings.mask_token": torch.zeros(1, 1, d),
           "embeddings.register_tokens": sd["register_tokens"],
           "embeddings.patch_embeddings.weight": sd["patch_embed.proj.weight"],
           "embeddings.patch_embeddings.bias": sd["patch_embed.proj.bias"],
           "norm.weight": sd["norm.weight"], "norm.bias": sd["norm.bias"]}
    names = {"norm1": "norm1", "attn.proj": "attention.o_proj", "norm2": "norm2",
             "mlp.fc1": "mlp.up_proj", "mlp.fc2": "mlp.down_proj"}
    for i in range(cfg.encoder_depth):
        src, dst = f"blocks.{i}.", f"layer.{i}."
        for p in ("weight", "bias"):
            qkv = sd[f"{src}attn.qkv.{p}"]
            for j, name in enumerate(("q_proj", "k_proj", "v_proj")):
                if not (name == "k_proj" and p == "bias"):  # DINOv3 k_proj has no bias
                    out[f"{dst}attention.{name}.{p}"] = qkv[j * d : (j + 1) * d]
            for a, b in names.items():
                out[f"{dst}{b}.{p}"] = sd[f"{src}{a}.{p}"]
        out[f"{dst}layer_scale1.lambda1"] = sd[f"{src}ls1.gamma"]
        out[f"{dst}layer_scale2.lambda1"] = sd[f"{src}ls2.gamma"]
    return out


def write(sd, path, prefix=""):
    sd = {prefix + k: v.contiguous().clone() for k, v in sd.items()}
    if path.suffix == ".safetensors":
        save_file(sd, str(path))
    else:
        torch.save(sd, path)
    return path


CASES = {  # layout -> (config, converter, zero k bias, file name, prefix, ignored keys)
    "meta_dinov2": (v2_cfg(), to_meta_dinov2, False, "dinov2_vits14_reg.pth", "",
                    {"mask_token"}),
    "meta_dinov3": (v3_cfg(), to_meta_dinov3, True, "dinov3.safetensors", "backbone.",
                    {"backbone.mask_token", "backbone.rope_embed.periods",
                     "backbone.blocks.0.attn.qkv.bias_mask", "backbone.blocks.1.attn.qkv.bias_mask"}),
    "hf_dinov2": (v2_cfg(num_registers=0), to_hf_dinov2, False, "model.safetensors", "",
                  {"embeddings.mask_token"}),
    "hf_dinov3": (v3_cfg(), to_hf_dinov3, True, "model.safetensors", "model.",
                  {"model.embeddings.mask_token"}),
}


@pytest.mark.parametrize("layout", list(CASES))
def test_load_each_layout(tmp_path, layout):
    cfg, convert, zero_k, name, prefix, ignored_expected = CASES[layout]
    source = random_encoder(cfg, seed=1, zero_k_bias=zero_k)
    target = random_encoder(cfg, seed=2)
    path = write(convert(source), tmp_path / name, prefix)

    ignored = load_dino_backbone(target, path)

    assert set(ignored) == ignored_expected
    expected = ours(source)
    for key, value in target.state_dict().items():
        assert torch.equal(value, expected[key]), key
    d = cfg.encoder_dim  # q, k, v land in that order in the fused projection
    qkv = target.blocks[1].attn.qkv.weight
    for j, part in enumerate((slice(0, d), slice(d, 2 * d), slice(2 * d, 3 * d))):
        assert torch.equal(qkv[part], source.blocks[1].attn.qkv.weight[j * d : (j + 1) * d])
    images = torch.randn(1, 3, 3 * cfg.patch_size, 5 * cfg.patch_size)
    with torch.no_grad():
        got, want = target(images), source(images)
    torch.testing.assert_close(got[0], want[0], rtol=0, atol=0)
    torch.testing.assert_close(got[1], want[1], rtol=0, atol=0)


def test_dinov3_bias_mask_zeroes_the_key_bias(tmp_path):
    cfg = v3_cfg()
    path = write(to_meta_dinov3(random_encoder(cfg, seed=1)), tmp_path / "v3.pth")
    target = random_encoder(cfg, seed=2)
    load_dino_backbone(target, path)
    d = cfg.encoder_dim
    assert (target.blocks[0].attn.qkv.bias[d : 2 * d] == 0).all()  # file had 7.0 there


def test_wrapped_pth_is_unwrapped(tmp_path):
    cfg = v2_cfg()
    source = random_encoder(cfg, seed=1)
    path = tmp_path / "ckpt.pth"
    torch.save({"model": to_meta_dinov2(source)}, path)
    target = random_encoder(cfg, seed=2)
    load_dino_backbone(target, path)
    assert torch.equal(target.cls_token, source.cls_token)


def test_init_weights_with_a_dino_file_starts_from_its_encoder(tmp_path):
    """`mhr2 init-weights --dino FILE`: the checkpoint's encoder is the file's, and its description names it."""
    cfg = load_model_config("tiny")
    source = random_encoder(cfg, seed=1, zero_k_bias=True)
    dino = write(to_meta_dinov3(source), tmp_path / "dinov3.safetensors", "backbone.")
    out = tmp_path / "init.safetensors"
    assert main(["-q", "init-weights", str(out), "--config", "tiny", "--dino", str(dino)]) == 0
    tensors, _, info = load_checkpoint(out)
    assert "dinov3.safetensors" in info["description"]
    for key, value in ours(source).items():
        assert torch.equal(tensors[f"encoder.{key}"], value), key


# ------------------------------------------------------------------------------- errors
def load_error(encoder, sd, path, prefix=""):
    write(sd, path, prefix)
    before = ours(encoder)
    with pytest.raises(CheckpointError) as info:
        load_dino_backbone(encoder, path)
    after = ours(encoder)
    assert all(torch.equal(before[k], after[k]) for k in before)  # encoder untouched
    message = str(info.value)
    assert path.name in message
    return message


def test_missing_key_is_named(tmp_path):
    cfg = v2_cfg()
    sd = to_meta_dinov2(random_encoder(cfg, 1))
    del sd["blocks.1.norm2.weight"]
    msg = load_error(random_encoder(cfg, 2), sd, tmp_path / "a.pth")
    assert "meta_dinov2" in msg and "missing keys (1)" in msg and "blocks.1.norm2.weight" in msg


def test_missing_value_projection_is_named(tmp_path):
    cfg = v2_cfg(num_registers=0)
    sd = to_hf_dinov2(random_encoder(cfg, 1))
    del sd["encoder.layer.0.attention.attention.value.weight"]
    msg = load_error(random_encoder(cfg, 2), sd, tmp_path / "a.safetensors")
    assert "hf_dinov2" in msg and "blocks.0.attn.qkv.weight" in msg
    assert "encoder.layer.0.attention.attention.value.weight" in msg
    assert "attention.attention.query.weight" not in msg  # only the absent part is named
    assert "unexpected" not in msg


def test_unexpected_key_is_named(tmp_path):
    cfg = v3_cfg()
    sd = to_hf_dinov3(random_encoder(cfg, 1, zero_k_bias=True))
    sd["layer.0.extra.weight"] = torch.zeros(3)
    msg = load_error(random_encoder(cfg, 2), sd, tmp_path / "a.safetensors")
    assert "hf_dinov3" in msg and "unexpected keys (1)" in msg and "layer.0.extra.weight" in msg


def test_shape_mismatch_names_key_shapes_and_field(tmp_path):
    sd = to_meta_dinov3(random_encoder(v3_cfg(), 1))
    msg = load_error(random_encoder(v3_cfg(encoder_dim=96), 2), sd, tmp_path / "a.safetensors")
    assert "cls_token: file (1, 1, 192) vs model (1, 1, 96)" in msg
    assert "check encoder_dim" in msg and "encoder_dim (file 192, config 96)" in msg


def test_depth_registers_patch_and_pos_embed_hints(tmp_path):
    sd = to_meta_dinov2(random_encoder(v2_cfg(), 1))
    other = v3_cfg(encoder_depth=3, num_registers=0)  # patch 16, rope
    msg = load_error(random_encoder(other, 2), sd, tmp_path / "a.pth")
    assert "blocks.2.norm1.weight" in msg  # missing third block
    assert "register_tokens (no meta_dinov2 mapping)" not in msg
    for hint in ("encoder_depth (file 2, config 3)", "num_registers (file 4, config 0)",
                 "patch_size (file 14, config 16)", "pos_embed (file learned, config rope)"):
        assert hint in msg


def test_pos_embed_grid_mismatch(tmp_path):
    sd = to_hf_dinov2(random_encoder(v2_cfg(num_registers=0), 1))
    msg = load_error(random_encoder(v2_cfg(num_registers=0, pos_embed_grid=6), 2), sd,
                     tmp_path / "a.safetensors")
    assert "pos_embed: file (1, 17, 192) vs model (1, 37, 192)" in msg
    assert "pos_embed_grid (file 4, config 6)" in msg


def test_rope_period_mismatch(tmp_path):
    sd = to_meta_dinov3(random_encoder(v3_cfg(), 1))
    msg = load_error(random_encoder(v3_cfg(rope_base=50.0), 2), sd, tmp_path / "a.pth")
    assert "rope_base" in msg and "file base ~100" in msg


def test_swiglu_is_refused(tmp_path):
    sd = to_meta_dinov3(random_encoder(v3_cfg(), 1))
    sd["blocks.0.mlp.w1.weight"] = sd.pop("blocks.0.mlp.fc1.weight")
    msg = load_error(random_encoder(v3_cfg(), 2), sd, tmp_path / "a.pth")
    assert "SwiGLU" in msg and "not supported" in msg


class NotATensor:
    pass


def test_pickled_object_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"cls_token": torch.zeros(1, 1, 192), "payload": NotATensor()}, path)
    with pytest.raises(CheckpointError, match="refusing .*evil.pth.*NotATensor"):
        load_dino_backbone(random_encoder(v3_cfg(), 2), path)


def test_non_tensor_entries_are_refused(tmp_path):
    path = tmp_path / "odd.pth"
    torch.save({"cls_token": torch.zeros(1, 1, 192), "note": "hello"}, path)
    with pytest.raises(CheckpointError, match="note"):
        load_dino_backbone(random_encoder(v3_cfg(), 2), path)


def test_unusable_files(tmp_path):
    encoder = random_encoder(v3_cfg(), 2)
    with pytest.raises(CheckpointError, match="not found"):
        load_dino_backbone(encoder, tmp_path / "absent.safetensors")
    (tmp_path / "w.bin").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="unsupported"):
        load_dino_backbone(encoder, tmp_path / "w.bin")
    save_file({"foo.weight": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="no cls_token"):
        load_dino_backbone(encoder, tmp_path / "other.safetensors")


def test_docstring_table_lists_every_rule():
    """The mapping table in the module docstring is the documentation: keep it in sync."""
    doc = dino_layouts.__doc__
    for layout, rules in dino_layouts.RULES.items():
        for theirs, ours_key, _ in rules:
            assert theirs in doc and ours_key in doc, (layout, theirs)
    for layout, ignored in dino_layouts.IGNORED.items():
        for key in ignored:
            assert key in doc, (layout, key)


def test_conv_stem_encoder_names_patch_embed(tmp_path):
    """A DINO file has a linear patch embedding: a conv-stem encoder cannot take it, and
    the error names the stem's keys and the config field to change."""
    sd = to_meta_dinov3(random_encoder(v3_cfg(), 1))
    msg = load_error(random_encoder(v3_cfg(patch_embed="conv"), 2), sd, tmp_path / "a.pth")
    assert "patch_embed.stem.0.weight" in msg and "patch_embed (file linear, config conv)" in msg

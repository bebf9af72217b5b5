"""`mhr2 export` and ONNX weights: the graph ONNX Runtime runs gives what PyTorch gives, at sizes
and batches the trace never saw, and the Detector reads a .onnx file as it reads a checkpoint.

Real parts throughout: torch.onnx's exporter, onnxruntime (CPU provider), the Anny body model.
The network is a small random one with the shipped model's features (conv stem, query selection
with proposal content, ray root); its proposal head is scaled up so that the queries it selects
are not ties (a fresh head scores every patch alike, and then which queries are selected is
arbitrary between two runtimes: `test_tied_proposals_are_named`).
"""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from mhr2_ros.checkpoint import save_checkpoint
from mhr2_ros.cli import main
from mhr2_ros.config import InferenceConfig, ModelConfig, from_dict, load_model_config
from mhr2_ros.errors import CheckpointError, ConfigError
from mhr2_ros.inference.detector import Detector
from mhr2_ros.inference.onnx_network import (
    CPU_PROVIDER, CUDA_PROVIDER, GRAPH_OUTPUTS, OnnxNetwork, choose_providers,
)  # fmt: skip
from mhr2_ros.model import build_model
from mhr2_ros.model import onnx_export
from mhr2_ros.model.onnx_export import ExportError, default_check_sizes, export_onnx, proposal_gap

REPO = Path(__file__).resolve().parent.parent
PROPOSAL_GAIN = 50.0  # spreads the random proposal logits over several units: no near-ties


def _small_config(**changes):
    base = dataclasses.replace(
        load_model_config("tiny"), image_size=128, nearness_ref_focal=128.0, encoder_depth=2, decoder_depth=1,
        num_queries=4, train_aspect_ratios=(1.333, 1.7778), patch_embed="conv", query_selection=True,
        proposal_content=True, root_frame="ray", layerscale_init=0.1,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def _model(cfg, seed=0):
    torch.manual_seed(seed)
    model = build_model(cfg).eval()
    if cfg.query_selection:
        with torch.no_grad():
            model.decoder.proposal_head.fc2.weight.mul_(PROPOSAL_GAIN)
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(model, checkpoint path, onnx path, what `mhr2 export` printed), exported through the CLI."""
    folder = tmp_path_factory.mktemp("onnx")
    model = _model(_small_config())
    weights = save_checkpoint(model, model.cfg, folder / "small.safetensors",
                              metadata={"trained": False, "inference": {"merge_radius": 0.25}})  # fmt: skip
    out = folder / "small.onnx"
    cli = "import sys; from mhr2_ros.cli import main; sys.exit(main(sys.argv[1:]))"
    run = subprocess.run([sys.executable, "-c", cli, "export", str(out), "--weights", str(weights)],
                         capture_output=True, text=True, cwd=folder, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr
    return model, weights, out, run.stdout


def _torch_outputs(model, images, K=None):
    with torch.no_grad():
        cls, patches, grid = model.encode(images)
        return model.predict_heads(model.decode(patches, grid), cls, tuple(images.shape[-2:]), K)


def test_export_prints_what_it_checked_and_leaves_one_file(exported):
    _, _, out, printed = exported
    sizes = default_check_sizes(_small_config())
    assert sizes == [(96, 128), (80, 128), (128, 160)]  # both training aspects, then one larger
    assert f"wrote {out}" in printed and "matches PyTorch at 96x128, 80x128, 128x160" in printed
    assert sorted(p.name for p in out.parent.iterdir()) == ["small.json", "small.onnx", "small.safetensors"]
    graph = onnx.load(str(out))
    assert [o.name for o in graph.graph.output] == list(GRAPH_OUTPUTS)
    props = {p.key: p.value for p in graph.metadata_props}
    assert from_dict(ModelConfig, json.loads(props["mhr2_ros.model"])) == _small_config()
    assert "mhr2_ros.input_hw" not in props  # a RoPE encoder: any size


@pytest.mark.parametrize("hw,batch,with_K", [((112, 144), 3, False), ((96, 176), 1, True), ((96, 128), 2, False)])
def test_onnx_network_gives_the_torch_outputs(exported, hw, batch, with_K):
    """Sizes and batches the trace never saw; loc in pixels and the root turned by the given K
    or the predicted FOV, as predict_heads does."""
    model, _, out, _ = exported
    images = torch.randn(batch, 3, *hw, generator=torch.Generator().manual_seed(7))
    K = torch.tensor([[[90.0, 0, 70], [0, 95.0, 50], [0, 0, 1]]]).expand(batch, 3, 3) if with_K else None
    want = _torch_outputs(model, images, K)
    got = OnnxNetwork(out, torch.device("cpu"))(images, K)
    assert set(got) == {"fov", "logits", "loc", "nearness", "rot6d", "shape", "track"}
    for key, value in got.items():
        assert value.shape == want[key].shape, key
        torch.testing.assert_close(value, want[key], atol=2e-4, rtol=1e-3, msg=key)
    with torch.no_grad():  # what the graph itself outputs: the root in the ray frame, other bones as they are
        raw = dict(zip(GRAPH_OUTPUTS, onnx_export._Graph(model)(images)))["rot6d"]
    assert not torch.allclose(got["rot6d"][:, :, 0], raw[:, :, 0], atol=1e-3)
    torch.testing.assert_close(got["rot6d"][:, :, 1:], raw[:, :, 1:], atol=2e-4, rtol=1e-3)
    assert float(got["loc"][..., 0].max()) > 1.0  # pixels, not fractions


def test_detector_reads_onnx_weights_as_it_reads_a_checkpoint(exported, rng):
    _, weights, out, _ = exported
    cfg = InferenceConfig(score_threshold=0.0, max_humans=3, merge_radius=0.0, device="cpu")
    a, b = Detector.from_checkpoint(weights, config=cfg), Detector.from_checkpoint(out, config=cfg)
    assert b.model is None and b.onnx.providers == [CPU_PROVIDER] and b.model_cfg == a.model_cfg
    assert b.checkpoint_merge_radius == 0.25 and b.metadata["exported_from"] == str(weights)
    assert b.runtime == f"ONNX Runtime {onnxruntime.__version__} (CPUExecutionProvider)"
    image = rng.integers(0, 255, (180, 320, 3), dtype=np.uint8)
    K = np.array([[200.0, 0, 150], [0, 210.0, 95], [0, 0, 1]])
    for given in (None, K):
        fa, fb = a(image, K=given), b(image, K=given)
        assert len(fa.humans) == len(fb.humans) == 3 and fa.K_source == fb.K_source
        assert fb.fov_y == pytest.approx(fa.fov_y, abs=1e-5)
        for ha, hb in zip(fa.humans, fb.humans):
            assert hb.score == pytest.approx(ha.score, abs=1e-4)
            np.testing.assert_allclose(hb.position, ha.position, atol=1e-3)
            np.testing.assert_allclose(hb.vertices, ha.vertices, atol=1e-3)
            np.testing.assert_allclose(hb.track_feature, ha.track_feature, atol=1e-3)
    assert "network" in fb.timings and "encoder" not in fb.timings and "encoder" in fa.timings


def test_onnx_weights_refuse_what_only_pytorch_has(exported):
    _, _, out, _ = exported
    for cfg, words in ((InferenceConfig(dtype="bfloat16", device="cpu"), "float32"),
                       (InferenceConfig(compile=True, device="cpu"), "compile")):  # fmt: skip
        with pytest.raises(ConfigError, match=words):
            Detector.from_checkpoint(out, config=cfg)
    other = dataclasses.replace(_small_config(), num_queries=5)
    with pytest.raises(ConfigError, match=r"num_queries.*leave the config out"):
        Detector.from_checkpoint(out, device="cpu", model_config=other)
    assert Detector.from_checkpoint(out, device="cpu", model_config=_small_config()).onnx is not None


def test_a_foreign_onnx_file_is_named(tmp_path):
    node = onnx.helper.make_node("Identity", ["images"], ["fov"])
    value = onnx.helper.make_tensor_value_info("images", onnx.TensorProto.FLOAT, [1])
    fov = onnx.helper.make_tensor_value_info("fov", onnx.TensorProto.FLOAT, [1])
    path = tmp_path / "foreign.onnx"
    onnx.save(onnx.helper.make_model(onnx.helper.make_graph([node], "g", [value], [fov])), str(path))
    with pytest.raises(CheckpointError, match=r"foreign.onnx: not an ONNX file written by `mhr2 export`"):
        OnnxNetwork(path, torch.device("cpu"))
    with pytest.raises(CheckpointError, match="do not exist"):
        OnnxNetwork(tmp_path / "absent.onnx", torch.device("cpu"))
    (tmp_path / "broken.onnx").write_bytes(b"not a protobuf")
    with pytest.raises(CheckpointError, match="onnxruntime cannot load it"):
        OnnxNetwork(tmp_path / "broken.onnx", torch.device("cpu"))


def test_providers_follow_the_device(caplog):
    cpu_only = [CPU_PROVIDER]
    both = [CUDA_PROVIDER, CPU_PROVIDER]
    assert choose_providers(torch.device("cpu"), both, explicit=True) == [CPU_PROVIDER]
    assert choose_providers(torch.device("cuda:1"), both, explicit=True) == [
        (CUDA_PROVIDER, {"device_id": 1}), CPU_PROVIDER]
    assert choose_providers(torch.device("cuda"), both, explicit=False)[0] == (CUDA_PROVIDER, {"device_id": 0})
    with pytest.raises(ConfigError, match="onnxruntime-gpu"):
        choose_providers(torch.device("cuda"), cpu_only, explicit=True)
    assert choose_providers(torch.device("cuda"), cpu_only, explicit=False) == [CPU_PROVIDER]
    assert "runs on the CPU" in caplog.text


def test_a_failed_check_writes_nothing(tmp_path, monkeypatch):
    """Any disagreement (here forced: no difference is small enough) leaves no file, not even a temporary."""
    monkeypatch.setattr(onnx_export, "ATOL", -1.0)
    with pytest.raises(ExportError, match=r"differs from PyTorch at input 96x128.*nothing written"):
        export_onnx(_model(_small_config()), tmp_path / "m.onnx", check_sizes=[(96, 128)])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("sizes,words", [([(100, 128)], "multiples of the patch size 16"),
                                         ([(16, 32)], "2 patches, fewer than the 4 queries")])
def test_bad_check_sizes_and_outputs_are_refused(tmp_path, sizes, words):
    with pytest.raises(ConfigError, match=words):
        export_onnx(_model(_small_config()), tmp_path / "m.onnx", check_sizes=sizes)
    with pytest.raises(ConfigError, match=r"must end in .onnx"):
        export_onnx(_model(_small_config()), tmp_path / "m.pt")
    assert list(tmp_path.iterdir()) == []


def test_tied_proposals_are_named():
    """A fresh proposal head scores every patch alike: the check's failure says so."""
    model = build_model(_small_config()).eval()
    with torch.no_grad():
        model.decoder.proposal_head.fc2.weight.zero_()
    images = torch.randn(1, 3, 96, 128)
    assert proposal_gap(model, images) == 0.0
    assert "arbitrary between runtimes" in onnx_export._tie_note(model, images)
    assert proposal_gap(_model(_small_config()), images) > onnx_export.TIE_GAP
    assert proposal_gap(_model(_small_config(query_selection=False, proposal_content=False)), images) == float("inf")


def test_a_learned_position_table_exports_for_one_size(tmp_path):
    cfg = _small_config(pos_embed="learned", patch_size=14, image_size=126, nearness_ref_focal=126.0,
                        pos_embed_grid=8, patch_embed="linear")  # fmt: skip
    model = _model(cfg)
    assert default_check_sizes(cfg) == [(98, 126)]  # the training aspect closest to 4:3 only
    with pytest.raises(ConfigError, match="one file per size"):
        export_onnx(model, tmp_path / "m.onnx", check_sizes=[(98, 126), (84, 126)])
    out = export_onnx(model, tmp_path / "m.onnx")["path"]
    net = OnnxNetwork(out, torch.device("cpu"))
    assert net.input_hw == (98, 126)
    images = torch.randn(2, 3, 98, 126)
    torch.testing.assert_close(net(images)["shape"], _torch_outputs(model, images)["shape"], atol=1e-4, rtol=1e-3)
    with pytest.raises(ConfigError, match=r"exported for 98x126 .* `mhr2 export --check-size 84x126`"):
        net(torch.randn(1, 3, 84, 126))


def test_cli_refusals_are_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "m.pt")]) == 2
    assert "output must end in .onnx" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "m.onnx"), "--weights", str(tmp_path / "w.onnx")]) == 2
    assert "already ONNX" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_without_onnxruntime_the_error_says_how_to_install(tmp_path):
    (tmp_path / "onnxruntime").mkdir()
    (tmp_path / "onnxruntime" / "__init__.py").write_text("raise ImportError('broken onnxruntime install')\n")
    code = ("from mhr2_ros.inference.onnx_network import OnnxNetwork\nimport torch\n"
            "OnnxNetwork('x.onnx', torch.device('cpu'))\n")  # fmt: skip
    env = {"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 1
    assert "ONNX weights need onnxruntime" in run.stderr and "pip install 'mhr2_ros[onnx]'" in run.stderr

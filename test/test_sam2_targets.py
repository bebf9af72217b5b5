"""mhr2-sam2-targets: SAM2 track targets of a rendered clip, with a randomly initialised
SAM2 (Hiera-T, 256 px input so it runs on CPU in seconds) saved as SAM2 ships checkpoints.

The targets are compared with SAM2's own SAM2Base code path (forward_image, then
_encode_new_memory on the mask prompt), so the two encoders, the mask transform and the
feature level used are SAM2's, not a re-implementation's.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("hydra")
pytest.importorskip("sam2")

from mhr2_ros.cli.sam2_targets import main  # noqa: E402
from mhr2_ros.errors import CheckpointError, ConfigError, InputError  # noqa: E402
from mhr2_ros.training import sam2_targets as st  # noqa: E402
from mhr2_ros.training.data import MIN_VISIBLE_PIXELS, ClipSource, to_target  # noqa: E402
from mhr2_ros.training.synthetic.dataset import load_clip  # noqa: E402

CONFIG = "sam2.1_hiera_t"
SIZE = 256  # SAM2 input side: 16 x 16 memory map, pooled 2 x 2 -> 8 x 8
FRAMES = 3


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def clip_dir(make_clip):
    return make_clip("sam2", FRAMES, people=2, distance_m=(2.0, 5.0), seed=3)


@pytest.fixture(scope="module")
def sam2_model():
    """A whole SAM2Base, randomly initialised, as sam2's config builds it."""
    from hydra.utils import instantiate

    cfg = st.load_sam2_config(CONFIG)
    cfg.model.image_size = SIZE
    torch.manual_seed(1)
    return instantiate(cfg.model).eval()


@pytest.fixture(scope="module")
def checkpoint(sam2_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "sam2.1_hiera_tiny.pt"
    torch.save({"model": sam2_model.state_dict()}, path)
    return path


def args(clip_dir, checkpoint, *extra):
    return [str(clip_dir), "--checkpoint", str(checkpoint), "--model-config", CONFIG, "--image-size", str(SIZE),
            "--device", "cpu", "--batch-size", "2", "--no-progress", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def targets(clip_dir, checkpoint):
    """The tool's first run: {frame: (track, has_mask)}."""
    assert main(args(clip_dir, checkpoint)) == 0
    return {i: read(clip_dir, i) for i in range(FRAMES)}


def read(clip_dir, i):
    with np.load(st.target_path(clip_dir, i)) as data:
        return data["track"], data["has_mask"]


def sam2_reference(model, encoder, image, mask):
    """SAM2Base's memory for a mask prompt (track_step with mask_inputs), pooled to 8 x 8."""
    with torch.no_grad():
        _, feats, _, sizes = model._prepare_backbone_features(model.forward_image(encoder._images([image])))
        high_res = encoder._masks(mask[None]).float() * 20.0 - 10.0  # SAM2Base._use_mask_as_output
        mem, _ = model._encode_new_memory(feats, sizes, high_res, torch.tensor([[10.0]]), is_mask_from_pts=False)
    return F.avg_pool2d(mem, mem.shape[-1] // st.POOLED_SIDE).flatten(1)[0].numpy()


def test_targets_are_sam2_memory_features_per_person(targets, clip_dir, checkpoint, sam2_model):
    clip = load_clip(clip_dir)
    encoder = st.Sam2TrackEncoder.from_checkpoint(checkpoint, CONFIG, SIZE)
    seen = 0
    for i, (track, has_mask) in targets.items():
        truth, instance = clip.truth(i), clip.instance(i)
        assert track.dtype == np.float16 and track.shape == (2, 4096) and np.isfinite(track).all()
        np.testing.assert_array_equal(has_mask, truth.visible_pixels > 0)
        assert (track[~has_mask] == 0).all()
        for p in np.flatnonzero(has_mask):
            ref = sam2_reference(sam2_model, encoder, clip.image(i), instance == truth.ids[p])
            np.testing.assert_allclose(track[p], ref, rtol=2e-3, atol=2e-3)
            seen += 1
        if has_mask.all():
            assert np.abs(track[0].astype(np.float32) - track[1]).mean() > 1e-2  # two people, two targets
    assert seen >= FRAMES  # the clip shows people in every frame
    manifest = json.loads((clip_dir / st.TARGETS_DIR / st.MANIFEST).read_text())
    assert manifest["model_config"] == CONFIG and manifest["image_size"] == SIZE and manifest["dim"] == 4096
    assert manifest["checkpoint"] == checkpoint.name and manifest["checkpoint_sha256"] == st.file_sha256(checkpoint)
    # an empty mask gives a zero row and has_mask False; a batch of one frame gives the
    # numbers of the tool's batches of two
    instance, person = clip.instance(0), clip.truth(0).ids[0]
    [(row, flag)] = encoder.encode([clip.image(0)], [np.stack([instance == person, np.zeros_like(instance)])])
    assert flag.tolist() == [True, False] and (row[1] == 0).all()
    np.testing.assert_array_equal(row[0].astype(np.float16), targets[0][0][0])


def test_resume_recomputes_only_the_missing_frame(targets, clip_dir, checkpoint, capsys):
    others = [st.target_path(clip_dir, i) for i in (0, 2)]
    before = [(p.stat().st_mtime_ns, p.read_bytes()) for p in others]
    st.target_path(clip_dir, 1).unlink()
    capsys.readouterr()
    assert main(args(clip_dir, checkpoint)) == 0
    assert "1 frames encoded, 2 already done" in capsys.readouterr().out
    assert [(p.stat().st_mtime_ns, p.read_bytes()) for p in others] == before
    for new, old in zip(read(clip_dir, 1), targets[1]):
        np.testing.assert_array_equal(new, old)
    assert not list((clip_dir / st.TARGETS_DIR).glob(".*"))  # no temporary files left
    # targets of another setup, or of unknown origin, are not mixed in silently
    assert main(args(clip_dir, checkpoint, "--image-size", "128")) == 2
    assert "another SAM2 setup" in capsys.readouterr().err
    manifest = clip_dir / st.TARGETS_DIR / st.MANIFEST
    saved = manifest.read_bytes()
    manifest.unlink()
    assert main(args(clip_dir, checkpoint)) == 2
    assert "no manifest.json" in capsys.readouterr().err
    manifest.write_bytes(saved)


class Payload:
    """Any class: a checkpoint that pickles one must be refused, not run."""


def test_bad_checkpoints_and_configs_are_named(tmp_path, checkpoint, capsys):
    missing = tmp_path / "nope.pt"
    assert main([str(tmp_path), "--checkpoint", str(missing)]) == 2  # not a clip: fails first
    assert "no clip" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="nope.pt"):
        st.read_sam2_checkpoint(missing)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="refusing .*junk.pt as a SAM2 checkpoint.*corrupted"):
        st.read_sam2_checkpoint(tmp_path / "junk.pt")
    torch.save({"model": {"w": torch.zeros(2)}, "optimizer": Payload()}, tmp_path / "pickled.pt")
    with pytest.raises(CheckpointError, match="refusing .*pickled.pt.*Payload"):  # never unpickled
        st.read_sam2_checkpoint(tmp_path / "pickled.pt")
    with pytest.raises(ConfigError, match="sam2.1_hiera_l"):
        st.load_sam2_config("sam2.1_hiera_xl")
    with pytest.raises(ConfigError, match="multiple of 128"):
        st.Sam2TrackEncoder(CONFIG, 200)
    state = st.read_sam2_checkpoint(checkpoint)
    state["image_encoder.extra"] = state.pop("memory_encoder.out_proj.weight")
    with pytest.raises(CheckpointError, match=r"missing keys: memory_encoder.out_proj.weight(.|\n)*unexpected keys: "
                       r"image_encoder.extra(.|\n)*--model-config"):  # fmt: skip
        st.Sam2TrackEncoder(CONFIG, SIZE).load_encoders(state, "ckpt.pt")


def test_clip_source_gives_the_targets_as_track(targets, clip_dir, checkpoint, tmp_path, capsys):
    clip = load_clip(clip_dir)
    kept = [targets[i][0][clip.truth(i).visible_pixels >= MIN_VISIBLE_PIXELS] for i in range(FRAMES)]
    source, rng = ClipSource([clip_dir]), np.random.default_rng(0)
    for _ in range(4):
        sample = source.sample(rng)
        assert sample.track is not None and sample.track.dtype == np.float32
        assert any(k.shape == sample.track.shape and np.array_equal(k, sample.track) for k in kept)
        target = to_target(sample, clip.truth(0).pose_6d.shape[1], torch.device("cpu"))
        assert target["track"].shape == (len(sample.loc), 4096) and target["sup"]["track"]
        # rows whose mask vanished at SAM2's input size are no targets (has_mask False)
        assert sample.track_valid.dtype == bool and (sample.track[~sample.track_valid] == 0).all()
        assert target["track_valid"].tolist() == sample.track_valid.astype(float).tolist()
    # targets of a clip that was re-rendered since (clip.json changed) are refused
    copy = Path(shutil.copytree(clip_dir, tmp_path / "copy"))
    info = json.loads((copy / "clip.json").read_text())
    (copy / "clip.json").write_text(json.dumps({**info, "seed": info["seed"] + 1}))
    with pytest.raises(InputError, match="targets of another clip"):
        ClipSource([copy]).sample(rng)
    assert main(args(copy, checkpoint)) == 2 and "clip_sha256" in capsys.readouterr().err
    assert main(args(copy, checkpoint, "--overwrite")) == 0  # same images: the same targets again
    np.testing.assert_array_equal(read(copy, 2)[0], targets[2][0])
    assert ClipSource([copy]).sample(rng).track is not None


# The reference above prepares its inputs with the encoder's own code; here they are made by hand.
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _by_hand(model, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """SAM2Base's memory of a SIZE-square RGB image and mask prompt, inputs and pooling by hand."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        _, feats, _, sizes = model._prepare_backbone_features(model.forward_image(x))
        logits = torch.from_numpy(mask)[None, None].float() * 20.0 - 10.0  # a binary mask prompt: +-10
        mem, _ = model._encode_new_memory(feats, sizes, logits, torch.tensor([[10.0]]), is_mask_from_pts=False)
    c, s = mem.shape[1], mem.shape[-1]
    assert (c, s) == (64, SIZE // 16)
    return mem[0].reshape(c, 8, s // 8, 8, s // 8).mean((2, 4)).reshape(-1).numpy()  # 64 x 8 x 8, channel-major


def test_track_targets_from_inputs_prepared_by_hand(sam2_model, checkpoint):
    encoder = st.Sam2TrackEncoder.from_checkpoint(checkpoint, CONFIG, SIZE)
    rng = np.random.default_rng(0)
    # 1) an image at the input size (no resize): the normalisation and channel order by hand
    image = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    mask = np.zeros((SIZE, SIZE), bool)
    mask[40:200, 90:150] = True
    [(rows, flags)] = encoder.encode([image], [mask[None]])
    assert rows.shape == (1, 4096) and flags.tolist() == [True]
    np.testing.assert_allclose(rows[0], _by_hand(sam2_model, image, mask), rtol=2e-3, atol=2e-3)
    # 2) a 4x larger frame: masks go down to the input size antialiased, kept where >= 0.5. A block
    # aligned to 4 px keeps its exact footprint; a 2 x 2 px speck (0.19 after the antialiased
    # resize, 1.0 without antialiasing) and a single pixel vanish: zero rows, has_mask False.
    big = 4 * SIZE
    flat = np.empty((big, big, 3), np.uint8)
    flat[:] = (120, 80, 200)  # a constant image resizes exactly
    block, speck, dot = (np.zeros((big, big), bool) for _ in range(3))
    block[256:768, 128:640] = True
    speck[401:403, 601:603] = True
    dot[500, 500] = True
    [(rows, flags)] = encoder.encode([flat], [np.stack([block, speck, dot])])
    assert flags.tolist() == [True, False, False] and (rows[1:] == 0).all()
    small_block = np.zeros((SIZE, SIZE), bool)
    small_block[64:192, 32:160] = True
    np.testing.assert_allclose(rows[0], _by_hand(sam2_model, flat[:SIZE, :SIZE], small_block),
                               rtol=2e-3, atol=2e-3)

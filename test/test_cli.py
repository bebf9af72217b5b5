"""The `mhr2` command line, in-process, on small images and videos the tests write."""

import argparse
import json
import re

import cv2
import numpy as np
import pytest
import torch

from mhr2_ros.checkpoint import load_checkpoint, load_state_strict, save_checkpoint
from mhr2_ros.cli import build_parser, main
from mhr2_ros.config import CONFIG_DIR, load_model_config
from mhr2_ros.model import build_model


@pytest.fixture(scope="module")
def weights(tmp_path_factory, tiny_config):
    path = tmp_path_factory.mktemp("w") / "tiny224.safetensors"
    return save_checkpoint(build_model(tiny_config), tiny_config, path)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("media")
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (96, 128, 3), dtype=np.uint8) for _ in range(5)]
    cv2.imwrite(str(root / "a.png"), frames[0])
    folder = root / "folder"
    folder.mkdir()
    cv2.imwrite(str(folder / "01.jpg"), frames[1])
    cv2.imwrite(str(folder / "02.png"), frames[2])
    (folder / "03.png").write_text("not an image")
    writer = cv2.VideoWriter(str(root / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (128, 96))
    for f in frames:
        writer.write(f)
    writer.release()
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 10)
    return root


def _run(*argv):
    return main(["-q", *map(str, argv)])


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


CONFIG_MISMATCH = "differs from tiny224.json"  # the --config case of test_bad_inputs_exit_2_with_a_clear_message


def test_every_subcommand_explains_every_option(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, sub_parser in sub.choices.items():
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0
        text = capsys.readouterr().out
        for action in sub_parser._actions:
            assert action.help, f"{name}: option {action.option_strings or action.dest} has no help"
            for opt in action.option_strings:
                assert opt in text
        # defaults are shown once and only when they say something
        assert "(default: None)" not in text and "(default: False)" not in text, name
        assert not re.search(r"\(default[^)]*\)\s*\(default:", text), name


def test_detect_image_writes_json_overlay_and_meshes(weights, media, tmp_path):
    out = tmp_path / "out"
    rc = _run("detect", media / "a.png", "--weights", weights, "-o", out,
              "--threshold", "0", "--max-humans", "2", "--save-meshes", "--intrinsics", "100,100,64,48")
    assert rc == 0
    (rec,) = _lines(out / "frames.jsonl")
    assert rec["name"] == "a.png" and rec["K_source"] == "given" and len(rec["humans"]) == 2
    assert rec["K"][0][0] == pytest.approx(100) and rec["image_size"] == {"width": 128, "height": 96}
    h = rec["humans"][0]
    assert len(h["joints_3d"]) == len(rec["joint_names"]) and set(h["shape"]) >= {"age", "height"}
    assert cv2.imread(str(out / "overlays" / "a.jpg")).shape == (96, 128, 3)
    assert (out / "meshes" / "a.glb").stat().st_size > 10_000


def test_folder_goes_past_a_bad_file_and_exits_nonzero(weights, media, tmp_path, caplog):
    out = tmp_path / "out"
    rc = main(["detect", str(media / "folder"), "--weights", str(weights), "-o", str(out)])
    assert rc == 1
    assert [r["name"] for r in _lines(out / "frames.jsonl")] == ["01.jpg", "02.png"]
    assert "1 input(s) failed" in caplog.text and "03.png" in caplog.text


def test_files_sharing_a_stem_keep_their_own_overlays_and_meshes(weights, media, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "a.jpg", "b.png"):
        cv2.imwrite(str(folder / name), cv2.imread(str(media / "a.png")))
    out = tmp_path / "out"
    assert _run("detect", folder, "--weights", weights, "-o", out, "--threshold", "0", "--max-humans", "1",
                "--save-meshes") == 0  # fmt: skip
    assert sorted(p.name for p in (out / "overlays").iterdir()) == ["a_jpg.jpg", "a_png.jpg", "b.jpg"]
    assert sorted(p.name for p in (out / "meshes").iterdir()) == ["a_jpg.glb", "a_png.glb", "b.glb"]


def test_video_gives_one_line_per_frame_and_an_overlay_video(weights, media, tmp_path):
    out = tmp_path / "out"
    assert _run("detect", media / "clip.mp4", "--weights", weights, "-o", out, "--fov", "60") == 0
    recs = _lines(out / "frames.jsonl")
    assert [r["frame"] for r in recs] == list(range(5))
    assert [r["timestamp"] for r in recs] == pytest.approx([i / 10 for i in range(5)])
    assert all(r["K_source"] == "given" and r["fov_y_deg"] == pytest.approx(60, abs=0.01) for r in recs)
    cap = cv2.VideoCapture(str(out / "overlay.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    cap.release()


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda m, w: ["detect", m / "folder" / "03.png", "--weights", w], "cannot be decoded"),
        (lambda m, w: ["detect", m / "broken.mp4", "--weights", w], "broken.mp4"),
        (lambda m, w: ["detect", m / "none.png", "--weights", w], "no such file"),
        (lambda m, w: ["detect", m / "a.png", "--weights", m / "missing.safetensors"], "weights file not found"),
        (lambda m, w: ["detect", m / "a.png", "--weights", w, "--config", "small"], CONFIG_MISMATCH),
        (lambda m, w: ["detect", m / "a.png", "--weights", w, "--intrinsics", "1,2,3"], "FX,FY,CX,CY"),
        (lambda m, w: ["detect", m / "a.png", "--weights", w, "--fov", "500"], "--fov"),
        # The checks below come before the weights load: a missing weights file is not what they report.
        (lambda m, w: ["detect", m / "a.png", "--weights", m / "no.safetensors", "--fov", "0"], "--fov 0.0"),
        (lambda m, w: ["demo", "--weights", m / "no.safetensors", "--people", "0"], "--people 0: expected 1 to 20"),
        (lambda m, w: ["demo", "--weights", m / "no.safetensors", "--people", "21"], "--people 21"),
        (lambda m, w: ["eval", "--weights", m / "no.safetensors", "--images", "0", "--clips", "0"], "nothing to eval"),
        (lambda m, w: ["eval", "--weights", m / "no.safetensors", "--data", m / "nothere"], "no such file or folder"),
        (lambda m, w: ["detect", m / "a.png", "--weights", m / "no.safetensors", "--floor-angle-sigma", "0.01"],
         "--floor-angle-sigma: it describes the floor of --camera-height, which is not set"),
        (lambda m, w: ["detect", m / "a.png", "--weights", m / "no.safetensors", "--camera-roll", "95"],
         "camera roll must be between -90 and 90 degrees, got 95.0"),
        (lambda m, w: ["detect", m / "a.png", "--weights", m / "no.safetensors", "--camera-height", "1",
                       "--floor-angle-sigma", "0.5"], "--floor-angle-sigma must be in [0, 0.2] radians, got 0.5"),
        (lambda m, w: ["detect", m / "a.png", "--weights", m / "no.safetensors", "--camera-height", "-1"],
         "camera height above the floor must be > 0 meters, got -1.0"),
        (lambda m, w: ["detect", m / "a.png", "--weights", m / "no.safetensors", "--level-roll", "5"],
         "--level-roll: nothing tells this camera's roll; give --camera-roll (with or without --camera-height)"),
        (lambda m, w: ["detect", m / "a.png", "--weights", w, "--camera-height", "1", "--level-roll", "95"],
         "level_roll_deg must be below 90 degrees (negative: never level), got 95.0"),
        (lambda m, w: ["eval", "--weights", m / "no.safetensors", "--floor-pitch-error", "1"],
         "--floor-pitch-error: these describe the floor of --floor, which is not set"),
    ],
)
def test_bad_inputs_exit_2_with_a_clear_message(weights, media, make_args, message, capsys, tmp_path):
    """One line naming the input and what was expected (README), no output left; outputs go under tmp_path,
    never into the working directory (the repository)."""
    argv = make_args(media, weights)
    out = tmp_path / "o"
    assert _run(*argv, *(["-o", out] if argv[0] in ("detect", "demo") else [])) == 2
    assert not out.exists() or not any(out.rglob("*")), "a failed run left files"
    err = capsys.readouterr().err
    assert "error:" in err and message in err
    if message != CONFIG_MISMATCH:
        assert err.count("\n") == 1
        return
    # weights that do not match the configuration: one line naming them, then one line per kind of mismatch
    first, *kinds = err.splitlines()
    assert first.endswith(f"error: {weights} does not match the model configuration:")
    titles = [line.split(":")[0].strip() for line in kinds]
    assert titles == ["missing keys", "shape mismatches", "the given config differs from tiny224.json in"]


def test_bad_camera_options_leave_no_output(weights, media, tmp_path):
    assert _run("detect", media / "a.png", "--weights", weights, "--fov", "200", "-o", tmp_path / "o") == 2
    assert not (tmp_path / "o").exists()


def test_the_synth_parser_bound_is_the_generator_s():
    from mhr2_ros.cli.synth import MAX_PEOPLE
    from mhr2_ros.training.synthetic.scene import MAX_PEOPLE as GENERATOR_MAX

    assert MAX_PEOPLE == GENERATOR_MAX
    with pytest.raises(SystemExit):  # argparse: the renderer needs at least one person
        build_parser().parse_args(["synth", "out", "--people", "0"])


def test_corrupted_weights(weights, media, tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(weights.read_bytes()[: 5000])
    (tmp_path / "bad.json").write_text(weights.with_suffix(".json").read_text())
    assert _run("detect", media / "a.png", "--weights", bad, "-o", tmp_path / "o") == 2
    assert "corrupted" in capsys.readouterr().err


def test_random_init_only_on_request(media, tmp_path):
    out = tmp_path / "o"
    assert _run("detect", media / "a.png", "--random-init", "--config", "tiny", "-o", out, "--no-overlay") == 0
    assert len(_lines(out / "frames.jsonl")) == 1


def test_demo_runs_on_the_embedded_clip(weights, tmp_path, capsys):
    out = tmp_path / "demo"
    assert _run("demo", "--weights", weights, "-o", out, "--frames", "3", "--people", "2",
                "--threshold", "0", "--max-humans", "2") == 0
    text = capsys.readouterr().out
    assert "default clip: 3 frames" in text and "tracking: IDF1" in text and "vertical FOV error" in text
    recs = _lines(out / "frames.jsonl")
    assert len(recs) == 3 and all(h["id"] for r in recs for h in r["humans"])
    for name in ("input.mp4", "overlay.mp4"):
        cap = cv2.VideoCapture(str(out / name))
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
        cap.release()


def test_demo_with_depth_scales_people_to_the_rendered_depth(tmp_path, capsys):
    """The shipped weights (the default): the people it finds stand where the rendered depth sees
    them (a random network's people lie anywhere, where depending on the torch version)."""
    out = tmp_path / "demo"
    assert _run("demo", "-o", out, "--frames", "2", "--people", "2", "--depth") == 0
    assert "depth: people scaled to the clip's rendered depth images" in capsys.readouterr().out
    sources = [h["depth_source"] for r in _lines(out / "frames.jsonl") for h in r["humans"]]
    assert len(sources) >= 2 and set(sources) == {"depth image"}


def test_demo_on_the_floor_stands_people_on_it(tmp_path, capsys):
    """The shipped weights on two frames of the demo clip with its floor: people stood on it."""
    out = tmp_path / "demo"
    assert _run("demo", "-o", out, "--frames", "2", "--floor") == 0
    assert "floor: people stood on the clip's floor" in capsys.readouterr().out
    sources = [h["depth_source"] for r in _lines(out / "frames.jsonl") for h in r["humans"]]
    assert sources and set(sources) == {"floor"}, sources


def test_detect_with_a_camera_mount_runs_the_floor(weights, media, tmp_path):
    out = tmp_path / "out"
    assert _run("detect", media / "a.png", "--weights", weights, "-o", out, "--threshold", "0", "--max-humans", "2",
                "--camera-height", "1.5", "--camera-pitch", "20", "--camera-roll", "-2") == 0  # fmt: skip
    (rec,) = _lines(out / "frames.jsonl")
    assert "floor" in rec["timings"] and len(rec["humans"]) == 2
    assert {h["depth_source"] for h in rec["humans"]} <= {"floor", "network"}  # a random network's bodies


def test_detect_with_a_camera_roll_alone_levels_and_places_nobody(weights, media, tmp_path):
    """--camera-roll without --camera-height: gravity only. The image is levelled (the same people as
    the Python API given that gravity), nobody is stood on a floor."""
    out = tmp_path / "out"
    assert _run("detect", media / "a.png", "--weights", weights, "-o", out, "--threshold", "0", "--max-humans", "2",
                "--camera-roll", "25") == 0  # fmt: skip
    (rec,) = _lines(out / "frames.jsonl")
    assert "floor" not in rec["timings"] and {h["depth_source"] for h in rec["humans"]} == {"network"}
    assert rec["level_roll_deg"] == pytest.approx(25.0)  # the JSON says the image was turned
    from mhr2_ros.config import InferenceConfig
    from mhr2_ros.inference.detector import Detector
    from mhr2_ros.inference.floor_contact import gravity_from_mount

    detector = Detector.from_checkpoint(weights, config=InferenceConfig(score_threshold=0.0, max_humans=2))
    image = cv2.cvtColor(cv2.imread(str(media / "a.png")), cv2.COLOR_BGR2RGB)
    levelled = detector(image, gravity=gravity_from_mount(roll_deg=25.0))
    plain = detector(image)
    np.testing.assert_allclose([h["position"] for h in rec["humans"]], [h.position for h in levelled.humans],
                               atol=1e-4)  # fmt: skip
    assert not np.allclose(levelled.humans[0].position, plain.humans[0].position, atol=1e-3)


def test_detect_distortion_runs_the_pinhole_image_of_the_intrinsics(weights, media, tmp_path, capsys):
    """--distortion: the detector gets the rectified frame, so the run equals one on that image without
    a lens; refusals name what is missing or wrong."""
    from mhr2_ros.cli.detect import DISTORTION_MODELS
    from mhr2_ros.inference.rectify import FISHEYE, RADIAL_TANGENTIAL, Rectifier

    assert DISTORTION_MODELS == RADIAL_TANGENTIAL + (FISHEYE,)
    K, D = "120,120,64,48", [-0.3, 0.1, 0.0, 0.0, 0.0]
    image = cv2.cvtColor(cv2.imread(str(media / "a.png")), cv2.COLOR_BGR2RGB)
    rectified = Rectifier(np.array([[120.0, 0, 64], [0, 120.0, 48], [0, 0, 1]]), D, "plumb_bob", (96, 128)).image(image)
    cv2.imwrite(str(tmp_path / "rect.png"), cv2.cvtColor(rectified, cv2.COLOR_RGB2BGR))
    common = ["--weights", weights, "--threshold", "0", "--max-humans", "2", "--intrinsics", K, "--no-overlay"]
    assert _run("detect", media / "a.png", "-o", tmp_path / "lens", *common, "--distortion=-0.3,0.1,0,0,0") == 0
    assert _run("detect", tmp_path / "rect.png", "-o", tmp_path / "pinhole", *common) == 0
    assert _run("detect", media / "a.png", "-o", tmp_path / "raw", *common) == 0
    (lens,), (pinhole,), (raw,) = (_lines(tmp_path / name / "frames.jsonl") for name in ("lens", "pinhole", "raw"))
    assert lens["humans"] == pinhole["humans"] and lens["K"] == pinhole["K"]
    assert lens["humans"] != raw["humans"]  # the lens moved what the network saw
    capsys.readouterr()
    for extra, message in ((["--distortion", "0.1,0,0,0,0"], "--distortion needs the camera's --intrinsics"),
                           (["--intrinsics", K, "--distortion", "a,b"], "expected comma-separated numbers"),
                           (["--intrinsics", K, "--distortion", "0.1,0.2,0.3"], "--distortion '0.1,0.2,0.3': "
                            "distortion model 'plumb_bob' with 3 coefficients is not one OpenCV undoes"),
                           (["--intrinsics", K, "--distortion", "0.1,0,0,0,0", "--distortion-model", "equidistant"],
                            "distortion model 'equidistant' with 5 coefficients is not one OpenCV undoes"),
                           (["--distortion-model", "equidistant"], "--distortion-model equidistant has no use")):
        assert _run("detect", media / "a.png", "-o", tmp_path / "bad", "--weights", weights, *extra) == 2
        assert message in capsys.readouterr().err


def test_detect_track_writes_track_ids(weights, media, tmp_path):
    out = tmp_path / "out"
    assert _run("detect", media / "clip.mp4", "--weights", weights, "-o", out, "--track",
                "--threshold", "0", "--max-humans", "2", "--no-overlay") == 0
    recs = _lines(out / "frames.jsonl")
    ids = [h["id"] for r in recs for h in r["humans"]]
    assert ids and all(isinstance(i, str) and i[0].isalpha() for i in ids)
    tracks = [h["track"] for r in recs for h in r["humans"]]
    assert {t["state"] for t in tracks} <= {"new", "tracked"} and all(len(t["velocity"]) == 3 for t in tracks)
    assert not any(t["ground_velocity"] for t in tracks) and {t["heading_source"] for t in tracks} == {"network"}
    h = recs[-1]["humans"][0]
    np.testing.assert_allclose(h["track"]["orientation"], h["orientation"], atol=1e-6)  # the network's heading
    fixed = tmp_path / "fixed"
    assert _run("detect", media / "clip.mp4", "--weights", weights, "-o", fixed, "--track", "--static-camera",
                "--threshold", "0", "--max-humans", "2", "--no-overlay") == 0  # fmt: skip
    assert all(h["track"]["ground_velocity"] for r in _lines(fixed / "frames.jsonl") for h in r["humans"])
    assert _run("detect", media / "clip.mp4", "--weights", weights, "-o", fixed, "--static-camera") == 2


def test_a_walker_facing_its_velocity_in_the_json():
    """frames.jsonl of a tracked walker seen by a static camera: the track's heading is the
    velocity's, its sigma the velocity heading's; the detection keeps the network's orientation."""
    from mhr2_ros.io.jsonl import PRIOR, frame_to_dict
    from mhr2_ros.tracking import Tracker
    from mhr2_ros.tracking import simulate as sim

    walker = sim.Walker(0, np.array([-1.0, 0.4, 4.0]), np.array([1.0, 0.0, 0.3]))
    tracker = Tracker()
    for f in sim.generate([walker], np.arange(10) / 30.0, seed=1):
        tracks = tracker.update(f.frame, f.stamp, camera_pose=np.eye(4))
    (h,) = frame_to_dict(f.frame, 9, "f9", f.stamp, tracks=tracks)["humans"]
    assert h["track"]["heading_source"] == "velocity" and h["track"]["ground_velocity"]
    assert h["sigma"]["heading"] == pytest.approx(PRIOR.velocity_heading_sigma)
    np.testing.assert_allclose(h["track"]["velocity"], tracks[0].velocity, atol=1e-4)
    np.testing.assert_allclose(h["track"]["orientation"], tracks[0].orientation, atol=1e-6)
    np.testing.assert_allclose(h["orientation"], f.frame.humans[0].orientation, atol=1e-6)


def test_default_demo_clip_is_what_the_readme_describes(body_model):
    from mhr2_ros.cli.demo import DEMO_SEED, _clip

    clip = _clip(argparse.Namespace(frames=30, people=4, seed=DEMO_SEED), body_model)
    clip.plan_for(0)
    people = clip.info["people"]
    assert len(people) == 4 and all(p["behaviour"] == "walk" for p in people)
    assert len({p["age_group"] for p in people}) >= 3


def test_a_video_shows_a_progress_bar(weights, media, tmp_path, capsys):
    """Without -q a video run shows its progress (every other test runs -q)."""
    assert main(["detect", str(media / "clip.mp4"), "--weights", str(weights), "-o", str(tmp_path / "o"),
                 "--no-overlay"]) == 0  # fmt: skip
    assert "5/5" in capsys.readouterr().err


def test_an_absent_camera_exits_2_naming_it(tmp_path, capsys):
    """A digit is a camera index, not a file name; a camera that cannot be opened is refused, no output."""
    assert _run("detect", "63", "--random-init", "-o", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: camera 63: cannot be opened" in err and "/dev/video63" in err
    assert not (tmp_path / "o").exists()


def test_init_weights_writes_a_checkpoint_that_loads_strictly(tmp_path, capsys):
    """`mhr2 init-weights` follows --config and --seed, marks the weights untrained and refuses a non-.safetensors
    name before writing anything."""
    preset = tmp_path / "shallow.yaml"  # not the default preset: --config must reach the checkpoint
    text = (CONFIG_DIR / "model_tiny.yaml").read_text()
    preset.write_text(text.replace("encoder_depth: 6", "encoder_depth: 2")
                      .replace("num_queries: 50", "num_queries: 20"))  # fmt: skip
    out = tmp_path / "init.safetensors"
    assert _run("init-weights", out, "--config", preset, "--seed", "3") == 0
    tensors, cfg, info = load_checkpoint(out)
    assert cfg == load_model_config(preset) and cfg.encoder_depth == 2 and cfg.num_queries == 20
    assert info["trained"] is False and "seed 3" in info["description"]
    load_state_strict(build_model(cfg), tensors, str(out))  # raises on any missing / unexpected / mismatched key
    torch.manual_seed(3)
    expected = build_model(load_model_config(preset)).state_dict()  # the same seed, built here
    assert all(torch.equal(tensors[k], v) for k, v in expected.items())
    assert _run("init-weights", tmp_path / "other.safetensors", "--seed", "4") == 0
    other, _, _ = load_checkpoint(tmp_path / "other.safetensors")
    assert not torch.equal(other["encoder.cls_token"], tensors["encoder.cls_token"])
    capsys.readouterr()
    assert _run("init-weights", tmp_path / "x.pt") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "x.pt" in err and ".safetensors" in err
    assert not (tmp_path / "x.pt").exists() and not (tmp_path / "x.json").exists()

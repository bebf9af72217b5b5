"""The tracker with camera poses (a fixed frame) and walkers facing their velocity."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from mhr2_ros.config import ConfigError
from mhr2_ros.geometry import homogeneous, rigid_transform
from mhr2_ros.inference.covariance import CovariancePrior
from mhr2_ros.tracking import Tracker, TrackerConfig
from mhr2_ros.tracking import simulate as sim
from mhr2_ros.tracking.heading import velocity_heading
from mhr2_ros.tracking.kalman import ConstantVelocityKF

FPS = 30.0


def _rot_y(angle: float) -> np.ndarray:
    """Rotation about the camera's y axis (vertical: y points down)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _turned(frames, angle: float):
    """The frames with every detection's heading turned by `angle` about its own up axis (a network
    whose heading is off by a per-person bias)."""
    for f in frames:
        for h in f.frame.humans:
            R = np.asarray(h.orientation, np.float64)
            h.orientation = (R @ _rot_about_z(angle)).astype(np.float32)  # body z = up
    return frames


def _rot_about_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _angle_deg(a, b) -> float:
    return float(np.degrees(np.arccos(np.clip(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


# ----------------------------------------------------------------------- Kalman filter
def test_kalman_full_covariance_matches_the_matrix_filter():
    rng = np.random.default_rng(1)
    kf = ConstantVelocityKF(capacity=1)
    A = rng.normal(size=(3, 3))
    r = A @ A.T * 0.01 + np.eye(3) * 1e-3  # a correlated measurement covariance
    z0 = np.array([1.0, 0.5, 4.0])
    kf.init(np.array([0]), z0[None], r[None], 2.0)
    x, P = np.concatenate([z0, np.zeros(3)]), np.block([[r, np.zeros((3, 3))], [np.zeros((3, 3)), 2.0 * np.eye(3)]])
    H = np.hstack([np.eye(3), np.zeros((3, 3))])
    q = 0.3
    for dt in (0.03, 0.1, 0.5):
        F = np.eye(6)
        F[:3, 3:] = dt * np.eye(3)
        Q = q * np.block([[dt**3 / 3 * np.eye(3), dt**2 / 2 * np.eye(3)], [dt**2 / 2 * np.eye(3), dt * np.eye(3)]])
        x, P = F @ x, F @ P @ F.T + Q
        kf.predict(np.array([0]), dt, q)
        z = z0 + rng.normal(size=3) * 0.1
        K = P @ H.T @ np.linalg.inv(H @ P @ H.T + r)
        x, P = x + K @ (z - H @ x), (np.eye(6) - K @ H) @ P
        kf.update(np.array([0]), z[None], r[None])
        np.testing.assert_allclose(kf.position(0)[0], x[:3], atol=1e-12)
        np.testing.assert_allclose(kf.velocity(0)[0], x[3:], atol=1e-12)
        np.testing.assert_allclose(kf.position(0)[1], P[:3, :3], atol=1e-12)


def test_kalman_transform_commutes_with_filtering():
    """Filtering in one frame then moving the state = moving the measurements then filtering."""
    R, t = _rot_y(0.7) @ np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]]), np.array([2.0, -1.0, 0.5])
    rng = np.random.default_rng(2)
    zs = rng.normal(size=(6, 3)) + [0.0, 0.0, 5.0]
    r = np.array([0.01, 0.01, 0.09])
    a, b = ConstantVelocityKF(1), ConstantVelocityKF(1)
    a.init(np.array([0]), zs[:1], r[None], 2.0)
    b.init(np.array([0]), zs[:1] @ R.T + t, (R @ np.diag(r) @ R.T)[None], 2.0)
    for z in zs[1:]:
        for kf, zz, rr in ((a, z, np.diag(r)), (b, R @ z + t, R @ np.diag(r) @ R.T)):
            kf.predict(np.array([0]), 0.1, 0.2)
            kf.update(np.array([0]), zz[None], rr[None])
    a.transform(R, t)
    np.testing.assert_allclose(a.x[0], b.x[0], atol=1e-10)
    np.testing.assert_allclose(a.P[0], b.P[0], atol=1e-10)


# ----------------------------------------------------------------------------- heading
def test_velocity_heading_by_hand():
    up = np.array([0.0, -1.0, 0.0])  # camera y points down
    R = np.stack([[0.0, 0.0, -1.0], np.cross(up, [0.0, 0.0, -1.0]), up], axis=1)  # facing the camera
    v = np.array([1.0, 0.3, 0.0])  # walking to the right (and 0.3 m/s along the up axis: ignored)
    turned, used = velocity_heading(R[None], v[None], 0.6)
    assert used.tolist() == [True]
    np.testing.assert_allclose(turned[0][:, 0], [1.0, 0.0, 0.0], atol=1e-12)  # x: along the walk
    np.testing.assert_allclose(turned[0][:, 2], up)  # the up axis (the tilt) is the network's
    np.testing.assert_allclose(turned[0] @ turned[0].T, np.eye(3), atol=1e-12)
    assert np.linalg.det(turned[0]) == pytest.approx(1.0)
    slow, used = velocity_heading(R[None], np.array([[0.5, 0.9, 0.0]]), 0.6)  # fast only along up
    assert used.tolist() == [False] and np.array_equal(slow[0], R)


# ------------------------------------------------------------------------ camera poses
def _moving_camera_frames(n: int, seed: int = 0):
    """A person standing still at (0.5, 0.4, 5) m in the world, seen by a camera driving along its
    x axis at 1 m/s while turning about its vertical axis at 0.3 rad/s: (frames, poses)."""
    cfg, rng = sim.SimConfig(), np.random.default_rng(seed)
    feature, p_world = rng.standard_normal(cfg.feature_dim), np.array([0.5, 0.4, 5.0])
    frames, poses = [], []
    for k in range(n):
        t = k / FPS
        R, c = _rot_y(0.3 * t), np.array([1.0 * t, 0.0, 0.0])
        p_cam = R.T @ (p_world - c)
        human = sim.make_human(p_cam, R.T @ sim.facing_rotation(np.array([0.0, 0.0, -1.0])),
                               feature + cfg.feature_noise * rng.standard_normal(cfg.feature_dim), cfg, rng)
        frame = sim.FrameResult(humans=[human], K=cfg.K, K_source="given", fov_y=1.0,
                                image_size=(cfg.height, cfg.width))
        frames.append(sim.SimFrame(t, frame, [0], []))
        poses.append(homogeneous(R, c))
    return frames, poses


def test_a_standing_person_stays_put_when_the_camera_moves_with_its_poses():
    frames, poses = _moving_camera_frames(60)
    posed, unposed = Tracker(), Tracker()
    for f, pose in zip(frames, poses):
        with_pose = posed.update(f.frame, f.stamp, camera_pose=pose)
        without = unposed.update(f.frame, f.stamp)
    assert [t.id for t in with_pose] == ["h1"] and [t.id for t in without] == ["h1"]
    assert with_pose[0].ground_velocity and not without[0].ground_velocity
    assert np.linalg.norm(with_pose[0].velocity) < 0.15  # over the ground: standing
    assert np.linalg.norm(without[0].velocity) > 0.7  # relative to the camera: the robot's motion
    np.testing.assert_allclose(with_pose[0].position, frames[-1].frame.humans[0].position, atol=0.15)
    # occluded for half a second while the robot drives on: it stays where it stood in the world
    R, c = _rot_y(0.3 * 2.5), np.array([2.5, 0.0, 0.0])
    empty = sim.FrameResult(humans=[], K=sim.SimConfig().K, K_source="given", fov_y=1.0, image_size=(480, 640))
    occluded = posed.update(empty, 2.5, camera_pose=homogeneous(R, c))[0]
    np.testing.assert_allclose(occluded.position, R.T @ (np.array([0.5, 0.4, 5.0]) - c), atol=0.2)
    # ... and faces where they faced in the world, seen from the turned camera
    facing = R.T @ sim.facing_rotation(np.array([0.0, 0.0, -1.0]))
    last = occluded.human  # the detection, in the camera axes of its own image (the last frame's)
    assert occluded.state.value == "occluded" and not occluded.heading_from_velocity
    np.testing.assert_allclose(occluded.orientation, R.T @ poses[-1][:3, :3] @ last.orientation, atol=1e-6)
    assert _angle_deg(occluded.orientation[:, 0], facing[:, 0]) < 3.0  # the detection's noise only
    assert _angle_deg(last.orientation[:, 0], facing[:, 0]) > 8.0  # the camera turned 9 deg since
    from mhr2_ros.ros.persons import person_views

    (view,) = person_views(empty, [occluded])
    joints = view.body_points(last.joints_3d)  # the body turns with it about the predicted pelvis
    turn = occluded.orientation @ np.asarray(last.orientation, np.float64).T
    np.testing.assert_allclose(joints - occluded.position, (last.joints_3d - last.position) @ turn.T, atol=1e-6)
    unposed_occluded = unposed.update(empty, 2.5)[0]  # without poses: the last detection's, as before
    np.testing.assert_array_equal(unposed_occluded.orientation, unposed_occluded.human.orientation)


def test_poses_that_start_late_carry_the_tracks_over(caplog):
    v = np.array([1.0, 0.0, 0.3])
    frames = sim.generate([sim.Walker(0, np.array([-1.0, 0.4, 4.0]), v)], np.arange(60) / FPS, seed=3)
    pose = homogeneous(_rot_y(1.2) @ np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]]), [3.0, 1.0, 0.2])
    tracker = Tracker()
    with caplog.at_level(logging.INFO, logger="mhr2_ros.tracking.tracker"):
        for k, f in enumerate(frames):
            tracks = tracker.update(f.frame, f.stamp, camera_pose=pose if k >= 30 else None)
            assert [t.id for t in tracks] == ["h1"]
            if k == 29:
                before = tracks[0]
            if k == 30:
                assert np.linalg.norm(tracks[0].velocity - before.velocity) < 0.15  # continuous
    assert "re-expressed in the fixed frame" in caplog.text
    assert np.linalg.norm(tracks[0].velocity - v) < 0.1  # camera axes, a static camera: the walk


def test_a_missing_pose_keeps_the_last_one_and_warns_once(caplog):
    frames, poses = _moving_camera_frames(40)
    tracker = Tracker()
    with caplog.at_level(logging.WARNING, logger="mhr2_ros.tracking.tracker"):
        for k, (f, pose) in enumerate(zip(frames, poses)):
            tracks = tracker.update(f.frame, f.stamp, camera_pose=pose if k < 30 or k == 35 else None)
    assert caplog.text.count("without a camera pose") == 2  # frames 30 and 36 start a gap each
    assert [t.id for t in tracks] == ["h1"] and tracks[0].ground_velocity


def test_a_bad_pose_is_refused_and_leaves_no_trace():
    frames, _ = _moving_camera_frames(2)
    tracker = Tracker()
    tracker.update(frames[0].frame, frames[0].stamp)
    bad = np.eye(4)
    bad[:3, :3] *= 2.0
    with pytest.raises(ValueError, match="must be a rotation"):
        tracker.update(frames[1].frame, frames[1].stamp, camera_pose=bad)
    assert tracker.frame_index == 0 and tracker.tracks[0].hits == 1
    with pytest.raises(ValueError, match=r"\(4, 4\)"):
        rigid_transform(np.eye(3))
    with pytest.raises(ValueError, match="last row"):
        rigid_transform(np.vstack([np.eye(4)[:3], [1.0, 0.0, 0.0, 1.0]]))
    with pytest.raises(ValueError, match="finite"):
        rigid_transform(np.full((4, 4), np.nan))


# ----------------------------------------------------------------- walkers face the velocity
def _walker_frames(velocity, seed=4, n=40):
    walker = sim.Walker(0, np.array([-1.0, 0.4, 4.0]), np.asarray(velocity, float))
    return _turned(sim.generate([walker], np.arange(n) / FPS, seed=seed), np.radians(70.0))


def test_a_walker_faces_its_velocity_with_a_static_camera():
    v = np.array([1.0, 0.0, 0.3])
    tracker, truth = Tracker(), sim.facing_rotation(v)
    for k, f in enumerate(_walker_frames(v)):
        track = tracker.update(f.frame, f.stamp, camera_pose=np.eye(4))[0]
        assert track.hits >= 5 or not track.heading_from_velocity  # velocity_heading_min_hits
    assert track.heading_from_velocity
    assert _angle_deg(track.orientation[:, 0], truth[:, 0]) < 8.0
    assert _angle_deg(track.human.orientation[:, 0], truth[:, 0]) > 60.0  # the detection is left alone
    np.testing.assert_allclose(track.orientation[:, 2], track.human.orientation[:, 2], atol=1e-6)  # same tilt


def test_no_velocity_heading_without_poses_slow_or_switched_off():
    v = np.array([1.0, 0.0, 0.3])
    cases = [(Tracker(), v, None), (Tracker(), v * 0.3, np.eye(4)),
             (Tracker(TrackerConfig(velocity_heading_speed=None)), v, np.eye(4))]
    for tracker, velocity, pose in cases:
        for f in _walker_frames(velocity):
            track = tracker.update(f.frame, f.stamp, camera_pose=pose)[0]
        assert not track.heading_from_velocity
        np.testing.assert_array_equal(track.orientation, np.asarray(track.human.orientation, np.float64))


def test_velocity_heading_settings_are_checked():
    with pytest.raises(ConfigError, match="velocity_heading_speed"):
        TrackerConfig(velocity_heading_speed=0.0)
    with pytest.raises(ConfigError, match="velocity_heading_min_hits"):
        TrackerConfig(velocity_heading_min_hits=0)


# ------------------------------------------------------------------ evaluation of the headings
def test_track_headings_by_hand():
    from types import SimpleNamespace

    from mhr2_ros.evaluation.track_heading import TrackHeadings
    from mhr2_ros.tracking.track import TrackState

    def person(rotation):  # a pelvis at the origin and one joint 1 m along the body's x axis
        joints = np.stack([np.zeros(3), rotation @ [1.0, 0.0, 0.0]])
        return SimpleNamespace(orientation=rotation, position=np.zeros(3), joints_3d=joints)

    truth = SimpleNamespace(humans=[person(np.eye(3)), person(np.eye(3))])
    detections = [person(_rot_about_z(np.radians(90.0))), person(_rot_about_z(np.radians(30.0))),
                  person(np.eye(3))]  # fmt: skip
    result = SimpleNamespace(humans=detections)

    def track(i, orientation, from_velocity, state=TrackState.TRACKED):
        return SimpleNamespace(human=detections[i], orientation=orientation, heading_from_velocity=from_velocity,
                               is_visible=state == TrackState.TRACKED)  # fmt: skip

    tracks = [track(0, _rot_about_z(np.radians(10.0)), True), track(1, detections[1].orientation, False),
              track(2, np.eye(3), False),  # a false positive: not among the pairs
              track(1, np.eye(3), True, TrackState.OCCLUDED)]  # not seen now
    headings = TrackHeadings(CovariancePrior(velocity_heading_sigma=0.15))
    headings.add(tracks, result, truth, [(0, 0), (1, 1)])
    out = headings.summary()
    assert out["track_orientation_error"] == pytest.approx(20.0)
    assert out["track_orientation_error_network"] == pytest.approx(60.0)
    assert out["velocity_heading_share"] == pytest.approx(0.5)
    assert out["velocity_heading_orientation_error"] == pytest.approx(10.0)
    assert out["velocity_heading_orientation_error_network"] == pytest.approx(90.0)
    # the published body turned 80 deg with its pelvis frame: its joint 2 sin(5 deg) m off, the network's sqrt(2)
    assert out["velocity_heading_mpjpe"] == pytest.approx(1000.0 * np.sin(np.radians(5.0)))
    assert out["velocity_heading_mpjpe_network"] == pytest.approx(1000.0 * np.sqrt(2.0) / 2.0)
    assert out["calibrated_velocity_heading_sigma"] == pytest.approx(np.radians(10.0))
    assert out["covariance_velocity_heading_coverage"] == 0.0  # 10 deg > 0.15 rad
    assert TrackHeadings().summary()["velocity_heading_share"] is None


# ------------------------------------------------------------ motion history from a moving camera
def test_the_motion_history_is_seen_from_the_current_camera():
    """A person standing at p (fixed frame) seen while the camera turns: re-expressed, the history
    predicts where the current camera sees them (pixel, nearness, orientation), not the old pixels."""
    from mhr2_ros.geometry import nearness_from_depth, project
    from mhr2_ros.tracking.motion import CameraView, MotionHistory

    K, p, body = sim.SimConfig().K, np.array([0.5, 0.4, 5.0]), sim.facing_rotation(np.array([1.0, 0.0, 0.0]))
    mh = MotionHistory(length=8)
    mh.ensure(1)
    for k in range(8):
        R, c = _rot_y(0.05 * k), np.array([0.1 * k, 0.0, 0.0])
        cam = R.T @ (p - c)
        mh.add(np.array([0]), k / FPS, project(cam, K)[None], np.array([nearness_from_depth(cam[2], 500.0, 768.0)]),
               (R.T @ body)[None], cam[None], K, (R, c))  # fmt: skip
    R, c = _rot_y(0.6), np.array([1.2, 0.0, 0.0])  # the camera now, 12 frames of turning later
    cam = R.T @ (p - c)
    pix, near, rot = mh.predict(np.array([0]), 20 / FPS, 0.01, CameraView(R, c))
    np.testing.assert_allclose(pix[0], project(cam, K), atol=1e-6)
    assert near[0] == pytest.approx(nearness_from_depth(cam[2], 500.0, 768.0), abs=1e-9)
    np.testing.assert_allclose(rot[0], R.T @ body, atol=1e-6)
    stale, _, _ = mh.predict(np.array([0]), 20 / FPS, 0.01)  # the paper's: extrapolates the old pixels
    assert np.linalg.norm(stale[0] - project(cam, K)) > 50.0


def test_a_fixed_camera_with_a_changing_k_predicts_the_papers_pixels():
    """A predicted field of view changes K every frame: the re-expressed history of a fixed camera
    must still be the detected pixels (each entry projected with its own K), as without poses."""
    from mhr2_ros.geometry import unproject
    from mhr2_ros.tracking.motion import CameraView, MotionHistory

    rng = np.random.default_rng(5)
    mh = MotionHistory(length=8)
    mh.ensure(1)
    for k in range(8):
        f = 500.0 * (1 + 0.1 * rng.standard_normal())
        K = np.array([[f, 0.0, 320.0], [0.0, f, 240.0], [0.0, 0.0, 1.0]])
        pixel = np.array([100.0 + 5 * k, 200.0 - 2 * k])
        position = unproject(pixel, np.float64(4.0 + 0.1 * k), K)
        mh.add(np.array([0]), k / FPS, pixel[None], np.array([0.3]), np.eye(3)[None], position[None], K,
               (np.eye(3), np.zeros(3)))  # fmt: skip
    paper = mh.predict(np.array([0]), 9 / FPS, 0.01)
    seen = mh.predict(np.array([0]), 9 / FPS, 0.01, CameraView(np.eye(3), np.zeros(3)))
    for a, b in zip(paper, seen):
        np.testing.assert_allclose(a, b, atol=1e-9)

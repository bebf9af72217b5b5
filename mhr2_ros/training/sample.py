"""A training sample, per-data-type supervision and the crop/resize augmentation.

Paper, "Dealing with heterogeneous training data": synthetic images supervise
every head; real images with pseudo-ground-truth meshes supervise only 3D pose
and shape (their annotations are sparse, so no score); images with 2D keypoints
only supervise the detection heads and the 2D reprojection.

Paper, "Image Encoder": training crops to a random aspect ratio, centred (to
keep the principal point centred), with the largest side fixed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, Optional

import numpy as np

from mhr2_ros.inference.preprocess import aspect_input_hw, fit_geometry, resize_and_pad

SUPERVISION: Dict[str, Dict[str, bool]] = {
    "synthetic": dict(score=True, loc=True, depth=True, pose=True, shape=True, mesh=True, reproj=True, fov=True),
    "pseudo3d": dict(score=False, loc=False, depth=False, pose=True, shape=True, mesh=True, reproj=False, fov=False),
    "keypoints2d": dict(score=True, loc=True, depth=False, pose=False, shape=False, mesh=False, reproj=True, fov=False),
}


@dataclass
class Sample:
    """One image and its people; numpy, pixels of `image`, camera frame meters."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    K: np.ndarray  # (3, 3) intrinsics in pixels of `image`
    loc: np.ndarray  # (M, 2) pelvis pixels
    keypoints_2d: np.ndarray  # (M, J, 2) pixels, joints in body.JOINT_NAMES order
    keypoints_vis: np.ndarray  # (M, J) 1 where the keypoint is annotated and inside the image
    data_type: str = "synthetic"  # key of SUPERVISION
    position: Optional[np.ndarray] = None  # (M, 3) pelvis positions (3D data only)
    rot6d: Optional[np.ndarray] = None  # (M, bones, 6) local bone rotations (3D data only)
    shape: Optional[np.ndarray] = None  # (M, 6) phenotypes (3D data only)
    track: Optional[np.ndarray] = None  # (M, D) SAM2 track-feature targets, when computed
    track_valid: Optional[np.ndarray] = None  # (M,) bool: which rows of `track` are targets (None: all)
    unlabelled_people: bool = False  # people in view are not all annotated (COCO crowds): no score loss

    def __post_init__(self) -> None:
        if self.data_type not in SUPERVISION:
            raise ValueError(f"data_type must be one of {sorted(SUPERVISION)}, got {self.data_type!r}")

    @property
    def fov(self) -> float:
        """Vertical field of view of K over the image height, radians."""
        return 2.0 * float(np.arctan(self.image.shape[0] / 2.0 / self.K[1, 1]))

    def supervision(self) -> Dict[str, bool]:
        sup = dict(SUPERVISION[self.data_type])
        sup["track"] = self.track is not None
        if self.unlabelled_people:  # an unmatched query may sit on an unannotated person
            sup["score"] = False
        return sup


def crop_resize(sample: Sample, aspect: float, image_size: int, patch: int) -> Sample:
    """Centred crop to `aspect` (W / H), then the inference preprocessing
    (inference.preprocess, without its aspect padding): one scale so the largest side is
    `image_size`, the short side padded up to a multiple of `patch`; the input size
    depends on the aspect alone, so samples of different sizes stack into one batch. People whose pelvis
    leaves the image are dropped (a query's location cannot leave it either); keypoints
    outside become invisible."""
    h, w = sample.image.shape[:2]
    if w / h > aspect:  # too wide: crop the width
        cw, ch = min(w, round(h * aspect)), h
    else:  # too tall: crop the height
        cw, ch = w, min(h, round(w / aspect))
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    geom = fit_geometry(ch, cw, aspect_input_hw(aspect, image_size, patch))  # one input size per aspect
    image = resize_and_pad(sample.image[y0 : y0 + ch, x0 : x0 + cw], geom)
    (sx, sy), (dx, dy) = geom.scale, geom.offset

    def tr(uv: np.ndarray) -> np.ndarray:
        return np.stack([(uv[..., 0] - x0) * sx + dx, (uv[..., 1] - y0) * sy + dy], -1).astype(np.float32)

    K = sample.K.astype(np.float64).copy()
    K[0, 0], K[0, 2] = K[0, 0] * sx, (K[0, 2] - x0) * sx + dx
    K[1, 1], K[1, 2] = K[1, 1] * sy, (K[1, 2] - y0) * sy + dy
    loc, kp = tr(sample.loc), tr(sample.keypoints_2d)
    right, bottom = dx + round(cw * sx), dy + round(ch * sy)  # the image inside its padding

    def inside(p: np.ndarray) -> np.ndarray:
        return (p[..., 0] >= dx) & (p[..., 0] < right) & (p[..., 1] >= dy) & (p[..., 1] < bottom)

    keep = inside(loc)
    vis = sample.keypoints_vis * inside(kp)

    def sel(a):
        return None if a is None else a[keep]

    return replace(
        sample, image=image, K=K.astype(np.float32), loc=loc[keep], keypoints_2d=kp[keep],
        keypoints_vis=vis[keep].astype(np.float32), position=sel(sample.position), rot6d=sel(sample.rot6d),
        shape=sel(sample.shape), track=sel(sample.track), track_valid=sel(sample.track_valid),
    )  # fmt: skip

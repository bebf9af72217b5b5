"""On-disk clip format (docs/dataset_format.md): writer and reader.

    OUT/clip.json             clip metadata, written last (its presence marks a complete clip)
    OUT/rgb/000000.png        8-bit RGB image
    OUT/depth/000000.png      16-bit depth in millimetres, 0 = no surface (sky) or beyond 65.535 m
    OUT/instance/000000.png   16-bit visible instance mask: person id + 1, 0 = nobody
    OUT/gt/000000.npz         FrameTruth arrays (numpy .npy members, no pickles)

Every file is written atomically, and the bytes depend only on (config, seed): PNGs
come from cv2's encoder, the NPZ archives are zip files with fixed timestamps and
sorted members, clip.json has sorted keys and no paths or times.
"""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import zipfile
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Union

import cv2
import numpy as np

from mhr2_ros.body.anny_body import JOINT_NAMES, SHAPE_NAMES
from mhr2_ros.errors import InputError
from mhr2_ros.io.atomic import atomic_write
from mhr2_ros.training.synthetic.clip_check import check_arrays, check_image, check_info
from mhr2_ros.training.synthetic.generator import FORMAT_VERSION, SynthFrame, SyntheticClip
from mhr2_ros.training.synthetic.rig import DOF_NAMES
from mhr2_ros.training.synthetic.truth import FrameTruth

log = logging.getLogger(__name__)
DEPTH_SCALE = 1000.0  # stored depth units per meter (millimetres)
DEPTH_MAX = 65535  # uint16 ceiling; farther surfaces are stored as 0
FOLDERS = ("rgb", "depth", "instance", "gt")
NOT_A_CLIP = "is not a synthetic clip (no clip.json; incomplete or wrong folder)"  # error text of a bad path
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed member timestamp: archives are byte-identical
_FRAME_FILE = re.compile(r"^\d{6}\.(png|npz)$")


def frame_name(index: int) -> str:
    return f"{index:06d}"


# ------------------------------------------------------------------------------ writing
def save_npz(path: Union[str, Path], arrays: Dict[str, np.ndarray]) -> None:
    """np.savez_compressed, but deterministic: sorted members with a fixed timestamp."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, member.getvalue())
    with atomic_write(path, "wb") as f:
        f.write(buffer.getvalue())


def _save_png(path: Path, image: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError(f"PNG encoding failed for {path}")
    with atomic_write(path, "wb") as f:
        f.write(data.tobytes())


def encode_depth(depth: np.ndarray) -> np.ndarray:
    """(H, W) float32 meters -> uint16 millimetres; 0 for no surface and beyond 65.535 m."""
    mm = np.rint(np.asarray(depth, dtype=np.float64) * DEPTH_SCALE)
    return np.where((mm > 0) & (mm <= DEPTH_MAX), mm, 0).astype(np.uint16)


def encode_instance(instance: np.ndarray) -> np.ndarray:
    """(H, W) int32 person id (-1 nobody) -> uint16 id + 1 (0 nobody)."""
    return (np.asarray(instance, dtype=np.int64) + 1).astype(np.uint16)


def write_frame(out: Path, frame: SynthFrame) -> None:
    name = frame_name(frame.index)
    _save_png(out / "rgb" / f"{name}.png", cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
    _save_png(out / "depth" / f"{name}.png", encode_depth(frame.depth))
    _save_png(out / "instance" / f"{name}.png", encode_instance(frame.instance))
    arrays = frame.truth.to_arrays()
    arrays["time"] = np.float64(frame.time)
    save_npz(out / "gt" / f"{name}.npz", arrays)


DERIVED_FOLDERS = ("sam2_targets",)  # written beside a clip by other tools (mhr2-sam2-targets)


def _check_output(out: Path, overwrite: bool, frames: int) -> None:
    """Refuse to mix a new clip into a folder holding something else."""
    if out.exists() and not out.is_dir():
        raise InputError(f"output {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise InputError(f"output folder {out} is not empty; choose another folder or pass --overwrite "
                             "(overwrite=True in Python)")  # fmt: skip
        (out / "clip.json").unlink(missing_ok=True)  # the clip is incomplete until rewritten
        for derived in DERIVED_FOLDERS:  # computed from the old frames: stale now
            shutil.rmtree(out / derived, ignore_errors=True)
        for sub in FOLDERS:  # stale frames of a longer previous clip
            for path in (out / sub).glob("*") if (out / sub).is_dir() else ():
                if _FRAME_FILE.match(path.name) and int(path.name[:6]) >= frames:
                    path.unlink()


FILES = {k: f"{k}/{{frame:06d}}.{'npz' if k == 'gt' else 'png'}" for k in FOLDERS}  # clip.json "files"


def clip_metadata(clip: SyntheticClip, extra: Optional[Dict] = None) -> Dict:
    info = dict(clip.info)
    info.update({"joint_names": list(JOINT_NAMES), "shape_names": list(SHAPE_NAMES),
                 "bone_names": list(clip.assets.body.bone_names), "dof_names": list(DOF_NAMES),
                 "depth_scale": DEPTH_SCALE, "files": dict(FILES)})  # fmt: skip
    info.update(extra or {})
    return info


def write_clip(out: Union[str, Path], clip: SyntheticClip, overwrite: bool = False,
               progress: Optional[Callable[[int], None]] = None, extra: Optional[Dict] = None) -> Path:  # fmt: skip
    """Render every frame of `clip` into `out`; `progress(i)` is called after each frame.
    clip.json is written last, so an interrupted run leaves no clip.json."""
    out = Path(out)
    _check_output(out, overwrite, len(clip))
    for sub in FOLDERS:
        (out / sub).mkdir(parents=True, exist_ok=True)
    for frame in clip:
        write_frame(out, frame)
        if progress is not None:
            progress(frame.index)
    with atomic_write(out / "clip.json", "w") as f:
        json.dump(clip_metadata(clip, extra), f, indent=1, sort_keys=True)
        f.write("\n")
    return out


# ------------------------------------------------------------------------------ reading
class ClipReader:
    """Random access to a written clip; frames come back as SynthFrame (numpy)."""

    def __init__(self, path: Union[str, Path]) -> None:
        self.path = Path(path)
        meta = self.path / "clip.json"
        if not meta.is_file():
            raise InputError(f"{self.path} {NOT_A_CLIP}")
        self.info: Dict = json.loads(meta.read_text())
        version = self.info.get("format_version")
        if version != FORMAT_VERSION:
            raise InputError(f"{self.path}: clip format version {version}, this reader reads {FORMAT_VERSION}")
        check_info(self.info, f"{meta}", FILES, JOINT_NAMES, SHAPE_NAMES)
        self.depth_scale = float(self.info.get("depth_scale", DEPTH_SCALE))
        self._checked: set = set()  # frames whose gt passed clip_check (training reads frames many times)

    def __len__(self) -> int:
        return int(self.info["frames"])

    def __iter__(self) -> Iterator[SynthFrame]:
        for i in range(len(self)):
            yield self[i]

    def _file(self, kind: str, index: int) -> Path:
        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} out of range 0..{len(self) - 1}")
        path = self.path / kind / f"{frame_name(index)}.{'npz' if kind == 'gt' else 'png'}"
        if not path.is_file():
            raise InputError(f"{path} is missing (clip.json lists {len(self)} frames, files "
                             f"{kind}/000000 .. {kind}/{frame_name(len(self) - 1)})")  # fmt: skip
        return path

    def _arrays(self, index: int) -> Dict[str, np.ndarray]:
        """The checked arrays of gt/NNNNNN.npz (clip_check: shapes, units, conventions)."""
        path = self._file("gt", index)
        with np.load(path, allow_pickle=False) as data:
            arrays = {}
            for key in data.files:
                try:
                    arrays[key] = data[key]
                except ValueError as exc:  # object arrays (e.g. a list of str) need pickles
                    raise InputError(f"{path}: array '{key}' cannot be read without pickles ({exc}); store strings "
                                     "as a numpy str array, np.array(labels, dtype=str)") from exc  # fmt: skip
        out = check_arrays(arrays, str(path), validate=index not in self._checked)
        self._checked.add(index)
        return out

    def truth(self, index: int) -> FrameTruth:
        arrays = self._arrays(index)
        arrays.pop("time", None)
        return FrameTruth.from_arrays(arrays)

    def _image_size(self, index: int) -> np.ndarray:
        with np.load(self._file("gt", index), allow_pickle=False) as data:
            return data["image_size"] if "image_size" in data.files else self._arrays(index)["image_size"]

    def image(self, index: int, image_size=None) -> np.ndarray:
        """(H, W, 3) uint8 RGB; checked against the gt's image_size."""
        path = self._file("rgb", index)
        image = cv2.cvtColor(self._read(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        check_image(image, self._image_size(index) if image_size is None else image_size, str(path))
        return image

    def depth(self, index: int, image_size=None) -> np.ndarray:
        """(H, W) float32 meters, 0 = no surface (clip.json depth_scale units per meter)."""
        path = self._file("depth", index)
        raw = self._read(path, cv2.IMREAD_UNCHANGED)
        check_image(raw, self._image_size(index) if image_size is None else image_size, str(path), "depth")
        if raw.ndim != 2:
            raise InputError(f"{path}: depth must be a single-channel 16-bit PNG, got {raw.ndim}-D {raw.dtype}")
        return (raw.astype(np.float32) / np.float32(self.depth_scale)).astype(np.float32)

    def instance(self, index: int, image_size=None) -> np.ndarray:
        """(H, W) int32 person id, -1 = nobody."""
        path = self._file("instance", index)
        raw = self._read(path, cv2.IMREAD_UNCHANGED)
        check_image(raw, self._image_size(index) if image_size is None else image_size, str(path), "instance")
        if raw.ndim != 2 or raw.dtype not in (np.uint8, np.uint16):
            raise InputError(f"{path}: the instance mask must be a single-channel 8- or 16-bit PNG holding "
                             f"person id + 1 (0 = nobody), got {raw.shape} {raw.dtype}")  # fmt: skip
        return raw.astype(np.int32) - 1

    @staticmethod
    def _read(path: Path, flags: int) -> np.ndarray:
        image = cv2.imread(str(path), flags)
        if image is None:
            raise InputError(f"{path}: cannot be decoded (damaged or not a PNG); re-render the clip")
        return image

    def __getitem__(self, index: int) -> SynthFrame:
        first_read = index not in self._checked  # the mask is checked with the gt, once
        arrays = self._arrays(index)
        time = float(arrays.pop("time", index / float(self.info.get("fps", 1.0))))
        truth = FrameTruth.from_arrays(arrays)
        size = truth.image_size
        instance = self.instance(index, size)
        stray = sorted(set(np.unique(instance).tolist()) - {-1} - set(truth.ids.tolist())) if first_read else []
        if stray:
            raise InputError(f"{self._file('instance', index)}: holds person ids {stray} that are not in the gt's ids "
                             f"{truth.ids.tolist()}; a pixel holds person id + 1 (0 = nobody)")  # fmt: skip
        return SynthFrame(index, time, self.image(index, size), self.depth(index, size), instance, truth)


def load_clip(path: Union[str, Path]) -> ClipReader:
    """Open a clip written by write_clip / `mhr2 synth`."""
    return ClipReader(path)


def clip_folders(paths: Sequence[Union[str, Path]]) -> List[Path]:
    """The clips named by `paths`, in order: a path is a clip (it holds clip.json) or a
    folder of clips (its subfolders that hold one, sorted by name), so a training or
    evaluation set of many clips is named by its parent folder."""
    found: List[Path] = []
    for path in map(Path, paths):
        if (path / "clip.json").is_file():
            found.append(path)
            continue
        children = sorted(c for c in path.iterdir() if (c / "clip.json").is_file()) if path.is_dir() else []
        if not children:
            raise InputError(f"{path} {NOT_A_CLIP} nor a folder of clips")
        found.extend(children)
    return found

#!/usr/bin/env python3
"""Pack what a bare GPU machine lacks to run this project, into one folder to carry.

    python benchmarks/gpu_kit.py                 # writes .gpukit/ (git-ignored) at the repo root

The lent GPU machine (the `device` tool of this workplace; any offline CUDA box alike) has
PyTorch, NumPy, SciPy, OpenCV, safetensors, PyYAML, tqdm, pandas and TensorBoard but not
`anny`, `roma`, `trimesh` or `motmetrics`, cannot download, and receives at most 64 MiB with
the working tree. The anny wheel alone is 48 MB and its build data 107 MB, so the kit holds:

- `anny/` + its dist-info: the package without its build data (`data/mpfb2`, `data/soma`,
  `data/cached`, `data/faceunits01`), which only the first model build reads;
- `anny_cache/`: that first build's result for this project's body model (the compact model
  data anny caches under ~/.cache/anny), xz-compressed; point `ANNY_CACHE_DIR` at it
  unpacked and anny loads it instead of building;
- `wheels/`: the pure-Python wheels of roma, trimesh, motmetrics and xmltodict at the
  versions installed here (pip download; this machine reaches the package registry).

benchmarks/gpu_session.sh unpacks it there. NVIDIA Warp (149 MB) is left out: without it
anny skins in torch (mhr2_ros/body/anny_body.py).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import lzma
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CARRY_LIMIT_MIB = 64  # the device tool's limit on the working tree plus carried paths
ANNY_BUILD_DATA = ("data/mpfb2", "data/soma", "data/cached", "data/faceunits01", "examples")
WHEELS = ("roma", "trimesh", "motmetrics", "xmltodict")  # pure Python; the GPU image lacks them
CACHE_GLOB = "v*/build_compact_model_data_*.safetensors"  # what anny reads once the model is built


def copy_anny(kit: Path) -> None:
    dist = importlib.metadata.distribution("anny")
    package = Path(dist.locate_file("anny"))
    skip = {package / part for part in ANNY_BUILD_DATA}
    shutil.copytree(package, kit / "anny", ignore=lambda d, names: [
        n for n in names if Path(d) / n in skip or n == "__pycache__"])  # fmt: skip
    info = Path(next(f for f in dist.files if f.name == "METADATA").locate()).parent  # anny reads it at import
    shutil.copytree(info, kit / info.name)


class _CacheFiles(logging.Handler):
    """The cache files anny names in its log while a model is built or loaded."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.paths: list = []

    def emit(self, record: logging.LogRecord) -> None:
        found = re.search(r"(?:from|at) (\S+\.safetensors)", record.getMessage())
        if found:
            self.paths.append(Path(found.group(1)))


def pack_anny_cache(kit: Path) -> Path:
    """The compact model data of this project's body model (built here first if needed):
    the file anny names while building it, not any other rig's cached beside it."""
    from mhr2_ros.body import BodyModel

    files = _CacheFiles()
    anny_log = logging.getLogger("anny")
    anny_log.addHandler(files)
    anny_log.setLevel(logging.INFO)
    try:
        BodyModel()  # builds (about a minute) or loads the cache
    finally:
        anny_log.removeHandler(files)
    compact = sorted({p for p in files.paths if p.match(CACHE_GLOB) and p.is_file()})
    if len(compact) != 1:
        raise SystemExit(f"anny named {files.paths or 'no cache file'} while building the body model; expected "
                         f"one {CACHE_GLOB}: is ANNY_CACHE_DIR set to nothing?")  # fmt: skip
    source = compact[0]
    target = kit / "anny_cache" / source.parent.name / (source.name + ".xz")
    target.parent.mkdir(parents=True)
    with open(source, "rb") as fin, lzma.open(target, "wb", preset=6) as fout:
        shutil.copyfileobj(fin, fout)
    return target


def download_wheels(kit: Path) -> None:
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in WHEELS]
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    "-d", str(kit / "wheels"), *pins], check=True)  # fmt: skip


def size_mib(paths) -> float:
    return sum(p.stat().st_size for root in paths for p in ([root] if root.is_file() else root.rglob("*"))
               if p.is_file()) / 2**20  # fmt: skip


def tracked_files() -> list:
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], check=True, capture_output=True).stdout
    return [REPO / name for name in out.decode().split("\0") if name and (REPO / name).is_file()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=REPO / ".gpukit", help="kit folder (replaced)")
    args = p.parse_args()
    partial = args.out.with_name(args.out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    copy_anny(partial)
    cache_mib = size_mib([pack_anny_cache(partial)])
    download_wheels(partial)
    shutil.rmtree(args.out, ignore_errors=True)
    partial.rename(args.out)  # a kit is whole or absent
    kit, tree = size_mib([args.out]), size_mib(tracked_files())
    print(f"kit: {args.out} {kit:.1f} MiB (anny cache {cache_mib:.1f} MiB); tracked files "
          f"{tree:.1f} MiB; together {kit + tree:.1f} of the {CARRY_LIMIT_MIB} MiB a device call carries")  # fmt: skip
    if kit + tree > CARRY_LIMIT_MIB:
        raise SystemExit("too large to carry: untracked, non-ignored files travel too (git status)")


if __name__ == "__main__":
    main()

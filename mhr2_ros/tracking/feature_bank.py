"""Appearance similarity of the paper's tracker: a bank of the features seen in the last
frames with their assigned IDs, and a KNN vote per ID.

Paper ("Tracking in videos"): keep the features of the past 50 frames with their IDs; for
each new feature retrieve the K=35 nearest by L1 distance, apply a softmax with
temperature t=15 and sum the scores per ID.

The paper does not say on what scale the temperature acts. A raw L1 distance over 4096
components depends on the network's feature magnitude (tens to thousands), which would
make t=15 either a hard nearest-neighbour vote or a uniform one. The default here
("median") expresses each distance in percent of the detection's median L1 distance to
the whole bank: scale-free, so t=15 means "a neighbour 15 percentage points of the
typical distance further away weighs e times less". "dim" (mean absolute difference per
component) and "none" (raw L1) are kept as options.

The L1 kernel runs in torch on blocks of bank rows: the work is M x N x D absolute
differences (10 people, 50 frames: 10 x 500 x 4096 = 20 M), which no BLAS trick reduces
for L1; blocking keeps the temporaries in cache and torch vectorises the reduction.
"""

from __future__ import annotations

import logging
from typing import Optional

import numpy as np
import torch

from mhr2_ros.devices import resolve_device

log = logging.getLogger(__name__)


def l1_distances(queries: torch.Tensor, bank: torch.Tensor, block_pairs: int = 64) -> torch.Tensor:
    """(M, D) x (N, D) -> (M, N) L1 distances.

    Computed block by block of bank rows, so that each CPU thread's share of the
    (M, rows, D) temporary is about block_pairs x D floats (64 x 4096 x 4 B = 1 MiB, an
    L2 cache) whatever the number of people. Measured on a 2-vCPU Xeon: 1 thread is
    fastest at 64 pairs, 2 threads at 128 (= 64 per thread); a fixed 8-row block is 1.6x
    slower at 20 people and 2.6x at 50. Three torch ops per block (difference, in-place
    absolute value, sum) is the fastest form measured in torch: cdist(p=1), l1_loss,
    pairwise_distance and vector_norm(ord=1) are 2.3-4.5x slower on CPU. The three passes
    over the L2-resident temporary bound it; a fused compiled loop that never writes the
    differences (tried with numba, not a dependency) was 4-5x faster. The block views
    come from `split` (one C++ call): half the per-block Python overhead of slicing.
    """
    m, n = queries.shape[0], bank.shape[0]
    out = torch.empty((m, n), dtype=queries.dtype, device=queries.device)
    if m == 0 or n == 0:
        return out
    threads = torch.get_num_threads() if queries.device.type == "cpu" else 1
    step = max(1, int(block_pairs) * threads // m)
    buf = torch.empty((m, min(step, n), queries.shape[1]), dtype=queries.dtype, device=queries.device)
    q = queries[:, None, :]
    for rows, dist in zip(bank.split(step), out.split(step, dim=1)):
        tmp = buf if rows.shape[0] == buf.shape[1] else buf[:, : rows.shape[0]]
        torch.sub(q, rows, out=tmp)
        tmp.abs_()
        torch.sum(tmp, dim=-1, out=dist)
    return out


def normalize_distances(knn_dist: np.ndarray, median: np.ndarray, dim: int, mode: str) -> np.ndarray:
    """Scale L1 distances (M, K) to the unit in which the softmax temperature is given.

    median: (M,) each detection's median L1 distance to the whole bank (used by "median";
    torch.median, i.e. the lower middle value for an even count of rows).
    """
    if mode == "median":
        return 100.0 * knn_dist / np.maximum(median, 1e-12)[:, None]  # percent of the median
    if mode == "dim":
        return knn_dist / float(dim)  # mean absolute difference per component
    if mode == "none":
        return knn_dist
    raise ValueError(f"unknown feature distance normalisation {mode!r}")


def knn_softmax(knn_dist: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax over each row's neighbours of -d / temperature: (M, K) weights summing to 1."""
    logits = -np.asarray(knn_dist, dtype=np.float64) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    w = np.exp(logits)
    return w / w.sum(axis=1, keepdims=True)


def scores_per_id(weights: np.ndarray, neighbour_ids: np.ndarray, track_ids: np.ndarray) -> np.ndarray:
    """Sum the (M, K) neighbour weights per ID: -> (M, T), columns in the order of track_ids.

    Neighbours whose ID is not in track_ids (no live track) contribute nothing.
    """
    m, k = weights.shape
    t = len(track_ids)
    if m == 0 or t == 0 or k == 0:
        return np.zeros((m, t))
    order = np.argsort(track_ids)
    sorted_ids = np.asarray(track_ids)[order]
    pos = np.clip(np.searchsorted(sorted_ids, neighbour_ids), 0, t - 1)
    valid = sorted_ids[pos] == neighbour_ids
    col = order[pos]
    flat = (np.arange(m)[:, None] * t + col)[valid]
    return np.bincount(flat, weights=weights[valid], minlength=m * t).reshape(m, t)


class FeatureBank:
    """(feature, id, frame index, stamp) rows of the last `max_frames` frames, or of the
    last `max_seconds` seconds when that is set, oldest first.

    The valid rows are one contiguous range [start, start + size) of a preallocated
    tensor: new rows go after it, evicted rows leave its front, and when the tensor's
    end is reached the range is moved back to the front (or the tensor doubles when
    it is over half full). So the L1 kernel always sees one contiguous block, and each
    row is copied about once more in its life (amortised), besides its first write.
    """

    def __init__(self, max_frames: int, device: str = "cpu", capacity: int = 256,
                 max_seconds: Optional[float] = None):
        self.max_frames = int(max_frames)
        self.max_seconds = None if max_seconds is None else float(max_seconds)  # replaces max_frames
        self.device = resolve_device(str(device))  # ConfigError now, not at the first frame with people
        self.dim = None  # feature width, fixed by the first push
        self._capacity = int(capacity)
        self._feats = None  # (capacity, dim) float32 on device
        self._ids = np.zeros(self._capacity, dtype=np.int64)
        self._frames = np.zeros(self._capacity, dtype=np.int64)
        self._stamps = np.zeros(self._capacity, dtype=np.float64)  # seconds
        self._start = 0
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def _end(self) -> int:
        return self._start + self._size

    @property
    def ids(self) -> np.ndarray:
        """(N,) ID of each row, oldest first."""
        return self._ids[self._start:self._end].copy()

    @property
    def frames(self) -> np.ndarray:
        """(N,) frame index of each row, oldest first."""
        return self._frames[self._start:self._end].copy()

    @property
    def stamps(self) -> np.ndarray:
        """(N,) stamp of each row in seconds, oldest first."""
        return self._stamps[self._start:self._end].copy()

    @property
    def num_frames(self) -> int:
        """Distinct frames that have rows in the bank."""
        return int(len(np.unique(self.frames)))

    def evict(self, frame: int, stamp: float = 0.0) -> None:
        """Drop the rows of frames older than the last `max_frames` ones ending at `frame`,
        or, with `max_seconds`, the rows stamped more than max_seconds before `stamp`."""
        if self.max_seconds is None:
            old = self._frames[self._start:self._end] < frame - self.max_frames + 1
        else:
            old = self._stamps[self._start:self._end] < stamp - self.max_seconds
        drop = int(np.argmin(old)) if not old.all() else self._size  # the leading old rows
        self._start += drop
        self._size -= drop
        if self._size == 0:
            self._start = 0

    def push(self, frame: int, features: np.ndarray, ids: np.ndarray, stamp: float = 0.0) -> None:
        """Add one frame's (m, D) features with their (m,) integer IDs, after evicting the
        rows that this frame (index `frame`, time `stamp` in seconds) puts out of the window."""
        self.evict(frame, stamp)
        features = np.asarray(features, dtype=np.float32)
        m = features.shape[0]
        if m == 0:
            return
        if self.dim is None:
            self.dim = int(features.shape[1])
            self._feats = torch.zeros((self._capacity, self.dim), dtype=torch.float32, device=self.device)
        elif features.shape[1] != self.dim:
            raise ValueError(f"track feature width {features.shape[1]} differs from the bank's {self.dim}")
        if self._end + m > self._capacity:
            self._make_room(m)
        end = self._end
        self._feats[end:end + m] = torch.from_numpy(features).to(self.device)
        self._ids[end:end + m] = ids
        self._frames[end:end + m] = frame
        self._stamps[end:end + m] = stamp
        self._size += m

    def _make_room(self, m: int) -> None:
        """Move the rows to the front of a tensor with room for m more, doubling it when over half full."""
        cap = self._capacity
        while 2 * (self._size + m) > cap:
            cap *= 2
        s, e = self._start, self._end
        if cap == self._capacity:  # move within the tensor (clone: the ranges may overlap)
            self._feats[: self._size] = self._feats[s:e].clone()
            self._ids[: self._size] = self._ids[s:e].copy()
            self._frames[: self._size] = self._frames[s:e].copy()
            self._stamps[: self._size] = self._stamps[s:e].copy()
        else:
            feats = torch.zeros((cap, self.dim), dtype=torch.float32, device=self.device)
            feats[: self._size] = self._feats[s:e]
            for name in ("_ids", "_frames", "_stamps"):
                new = np.zeros(cap, dtype=getattr(self, name).dtype)
                new[: self._size] = getattr(self, name)[s:e]
                setattr(self, name, new)
            self._feats, self._capacity = feats, cap
            log.debug("feature bank grown to %d rows", cap)
        self._start = 0

    def distances(self, queries: np.ndarray, block_pairs: int = 64) -> torch.Tensor:
        """(M, D) queries -> (M, N) L1 distances to the rows, oldest first (torch, on device)."""
        q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32)).to(self.device)
        return l1_distances(q, self._feats[self._start:self._end], block_pairs)

    def id_scores(self, queries: np.ndarray, track_ids: np.ndarray, k: int, temperature: float,
                  norm: str = "median", block_pairs: int = 64) -> np.ndarray:
        """Paper's feature similarity: (M, D) detections x (T,) track IDs -> (M, T) in [0, 1].

        Each row sums to 1 over the IDs of its K nearest rows (0 if the bank is empty).
        """
        m, t = len(queries), len(track_ids)
        if m == 0 or t == 0 or self._size == 0:
            return np.zeros((m, t))
        if queries.shape[1] != self.dim:
            raise ValueError(f"track feature width {queries.shape[1]} differs from the bank's {self.dim}")
        dist = self.distances(queries, block_pairs)  # (M, N)
        kk = min(int(k), self._size)
        knn_dist, knn_idx = torch.topk(dist, kk, dim=1, largest=False)  # ascending distances
        median = dist.median(dim=1).values if norm == "median" else torch.zeros(m)
        knn_dist = knn_dist.double().cpu().numpy()
        neighbour_ids = self.ids[knn_idx.cpu().numpy()]  # (M, K)
        scaled = normalize_distances(knn_dist, median.double().cpu().numpy(), self.dim, norm)
        return scores_per_id(knn_softmax(scaled, temperature), neighbour_ids, np.asarray(track_ids))

import numpy as np
import pytest

from mhr2_ros.inference.select import select_queries


def test_threshold_is_strict_and_orders_by_score():
    scores = np.array([0.3, 0.9, 0.4, 0.41, 0.7])
    pos = np.zeros((5, 3)) + np.arange(5)[:, None] * 10.0
    keep = select_queries(scores, pos, threshold=0.4)
    assert keep.tolist() == [1, 4, 3]  # 0.4 itself is not above the threshold


def test_nms_off_keeps_duplicates():
    scores = np.array([0.9, 0.8])
    pos = np.array([[0.0, 0, 3], [0.05, 0, 3]])
    assert select_queries(scores, pos, 0.4, nms_distance=0.0).tolist() == [0, 1]


def test_nms_suppresses_lower_score_within_radius_only():
    scores = np.array([0.6, 0.95, 0.8, 0.7])
    pos = np.array([[0.0, 0, 3.1], [0.0, 0, 3.0], [1.0, 0, 3.0], [1.2, 0, 3.0]])
    keep = select_queries(scores, pos, 0.4, nms_distance=0.3)
    # 1 suppresses 0 (0.1 m); 2 suppresses 3 (0.2 m); 1 and 2 are 1 m apart.
    assert keep.tolist() == [1, 2]


def test_max_count_and_empty():
    scores = np.array([0.9, 0.8, 0.7])
    pos = np.arange(9.0).reshape(3, 3)
    assert select_queries(scores, pos, 0.4, max_count=2).tolist() == [0, 1]
    assert select_queries(np.array([0.1]), np.zeros((1, 3)), 0.4).tolist() == []


def test_merge_sums_duplicates_within_the_radius_at_the_leaders_depth():
    from mhr2_ros.inference.select import merge_duplicates

    scores = np.array([0.3, 0.25, 0.2, 0.05, 0.35])
    uv = np.array([[100.0, 100], [105, 100], [160, 100], [101, 100], [300, 100]])
    depth = np.full(5, 2.0)
    # 0.5 m at 2 m with a 200 px focal: 50 px. 4 leads alone (140 px to 2); 0 takes 1 (5 px)
    # but not 2 (60 px); 3 is under MERGE_FLOOR and keeps its score.
    merged = merge_duplicates(scores, uv, depth, focal_px=200.0, radius_m=0.5)
    assert merged == pytest.approx([0.55, 0.0, 0.2, 0.05, 0.35])
    assert select_queries(merged, np.zeros((5, 3)), 0.4).tolist() == [0]  # none passes without merging
    # The leader 1 m away: 100 px, so 2 joins it too; a sum is capped at 1.
    depth[0] = 1.0
    assert merge_duplicates(scores, uv, depth, 200.0, 0.5) == pytest.approx([0.75, 0.0, 0.0, 0.05, 0.35])
    assert merge_duplicates(scores * 2, uv, depth, 200.0, 0.5)[0] == 1.0


def test_merge_radius_must_not_be_negative():
    from mhr2_ros.config import InferenceConfig
    from mhr2_ros.errors import ConfigError

    with pytest.raises(ConfigError, match="merge_radius must be >= 0"):
        InferenceConfig(merge_radius=-0.1)


def test_merge_leads_best_first_takes_each_query_once_and_the_floor_itself_joins():
    from mhr2_ros.inference.select import MERGE_FLOOR, merge_duplicates

    # listed worst first; radius 50 px (0.5 m at 2 m, focal 200). The best (2, at u 0) leads and takes
    # 1 (40 px) and 3 (5 px, scoring exactly MERGE_FLOOR); 0 (80 px) then leads alone: 1 is taken.
    scores = np.array([0.2, 0.3, 0.4, MERGE_FLOOR])
    uv = np.array([[80.0, 0], [40, 0], [0, 0], [5, 0]])
    merged = merge_duplicates(scores, uv, np.full(4, 2.0), focal_px=200.0, radius_m=0.5)
    assert merged == pytest.approx([0.2, 0.0, 0.4 + 0.3 + MERGE_FLOOR, 0.0])


def test_nms_is_3d_people_behind_each_other_are_both_kept():
    """Kills: NMS distance on (x, y) only. Same pelvis ray direction, 1 m apart in depth."""
    scores = np.array([0.9, 0.8])
    pos = np.array([[0.0, 0.0, 3.0], [0.0, 0.0, 4.0]])
    assert select_queries(scores, pos, 0.4, nms_distance=0.3).tolist() == [0, 1]
    assert select_queries(scores, pos, 0.4, nms_distance=1.5).tolist() == [0]

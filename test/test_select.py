import numpy as np

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

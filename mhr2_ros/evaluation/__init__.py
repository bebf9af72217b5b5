"""evaluation stage: metrics. Import-free on purpose; e.g. `from mhr2_ros.evaluation import mot`
(IDF1, MOTA, ID switches, HOTA on point tracks; needs py-motmetrics)."""

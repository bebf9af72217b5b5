"""io stage: frame sources, image checks, overlays, video / mesh / JSON-lines writers.

Modules (imported on first use: cv2, trimesh and torch stay out of `import mhr2_ros.io`):
- atomic: atomic_write, atomic_path (no half-written outputs)
- images: check_rgb8 (strict), to_rgb8 (conversion), load_image, extension sets
- sources: open_source -> FrameSource of Frame (image, folder, video, camera)
- video_writer: VideoWriter (RGB frames -> .mp4)
- overlay: draw_overlay (meshes, skeletons, boxes, labels), color_for
- mesh_export: export_glb (one GLB node per person)
- jsonl: frame_to_dict, JsonlWriter (one JSON object per frame)
"""

from mhr2_ros.lazy import lazy_exports

_EXPORTS = {
    "atomic_write": "atomic",
    "atomic_path": "atomic",
    "check_rgb8": "images",
    "to_rgb8": "images",
    "load_image": "images",
    "IMAGE_EXTENSIONS": "images",
    "VIDEO_EXTENSIONS": "images",
    "open_source": "sources",
    "Frame": "sources",
    "FrameSource": "sources",
    "VideoWriter": "video_writer",
    "draw_overlay": "overlay",
    "color_for": "overlay",
    "export_glb": "mesh_export",
    "frame_to_dict": "jsonl",
    "JsonlWriter": "jsonl",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)  # `from mhr2_ros.io import open_source` loads sources only

"""Video topics -> RGB frames: foxglove_msgs/CompressedVideo and ffmpeg_image_transport's
FFMPEGPacket, as recorded in rosbag2 (MCAP) or subscribed to by the node.

Foxglove's schema (recorded by foxglove_compressed_video_transport and Foxglove's own agents)
carries one picture per message: `data` holds the packets of exactly one frame (H.264 and H.265
in Annex B, each keyframe with its parameter sets; VP9 one frame; AV1 low-overhead OBUs), and
the streams have no B-frames, so each message decodes to its own picture as it arrives.
ffmpeg_image_transport (image_transport's `ffmpeg` plugin) publishes one FFmpeg packet per
message, its `encoding` naming the codec ("h264;yuv420p;bgr8;bgr8", the codec first) or, in
releases before 2.0, the encoder ("libx264", "hevc_nvenc", ...); its encoder is opened without
B-frames (NVENC cannot do them), so there too each message is one picture, and `flags` says which
are keyframes. The frames depend on the ones before them: one decoder per topic reads every
message in order, and the messages before the first keyframe (a recording that starts inside a
group of pictures) have no picture (BeforeKeyframe: the bag reader counts and skips them).
Decoding uses FFmpeg through PyAV (the `video` extra: `pip install -e ".[video]"`), imported only
when a video topic is read.
"""

from __future__ import annotations

import logging
from typing import Dict, Optional

import numpy as np

from mhr2_ros.errors import ConfigError, InputError

log = logging.getLogger(__name__)

COMPRESSED_VIDEO = "foxglove_msgs/msg/CompressedVideo"
FFMPEG_PACKET = "ffmpeg_image_transport_msgs/msg/FFMPEGPacket"
VIDEO_TYPES = (COMPRESSED_VIDEO, FFMPEG_PACKET)
# the schema's `format` values -> FFmpeg's decoder (libdav1d: the AV1 decoder PyAV's wheels bundle)
DECODERS: Dict[str, str] = {"h264": "h264", "h265": "hevc", "vp9": "vp9", "av1": "libdav1d"}
# FFMPEGPacket.encoding's codec or encoder name -> the format above: FFmpeg's names for the codecs,
# then the encoders by what their names hold (libx264, h264_nvenc, hevc_vaapi, libvpx-vp9, libsvtav1, ...)
CODEC_NAMES: Dict[str, str] = {"h264": "h264", "hevc": "h265", "h265": "h265", "vp9": "vp9", "av1": "av1"}
ENCODER_MARKS = (("264", "h264"), ("265", "h265"), ("hevc", "h265"), ("vp9", "vp9"), ("av1", "av1"))
KEY_FLAG = 1  # AV_PKT_FLAG_KEY in FFMPEGPacket.flags
# dav1d decodes frames in parallel and hands a picture back several messages late unless told not to
DECODER_OPTIONS: Dict[str, Dict[str, str]] = {"libdav1d": {"max_frame_delay": "1"}}


class BeforeKeyframe(InputError):
    """A message of a stream whose first keyframe has not come yet: no picture, and nothing wrong."""


def stream_format(msg, name: str = "video") -> str:
    """The format (a DECODERS key) of a CompressedVideo or FFMPEGPacket message, or InputError."""
    if not hasattr(msg, "encoding"):  # CompressedVideo: the schema's own names
        return str(msg.format).strip().lower()
    codec = str(msg.encoding).split(";")[0].strip().lower()
    if codec in CODEC_NAMES:
        return CODEC_NAMES[codec]
    for mark, fmt in ENCODER_MARKS:
        if mark in codec:
            return fmt
    raise InputError(f"{name}: FFMPEGPacket encoding {msg.encoding!r} is not a codec read here; expected H.264, "
                     "H.265 (HEVC), VP9 or AV1, e.g. 'h264;yuv420p;bgr8;bgr8', 'libx264' or 'hevc_nvenc'")


class VideoDecoder:
    """The pictures of one video topic (CompressedVideo or FFMPEGPacket), message after message
    (stateful: a frame needs the ones before it). `decode(msg, name)` returns (H, W, 3) uint8 RGB,
    or raises InputError naming the message when it has no picture."""

    def __init__(self) -> None:
        self.format: Optional[str] = None  # the stream's, from its first message
        self._context = None  # PyAV's decoder, opened by the first message
        self._av = None  # the av module, imported then
        self._pictures = 0  # decoded so far; none yet: a decoding error means "no keyframe yet"

    def decode(self, msg, name: str = "video") -> np.ndarray:
        fmt = stream_format(msg, name)
        if not self._pictures and not int(getattr(msg, "flags", KEY_FLAG)) & KEY_FLAG:
            raise BeforeKeyframe(f"{name}: no picture before the stream's first keyframe (the recording starts "
                                 "inside a group of pictures)")  # an FFMPEGPacket says so: no need to try
        if self._context is None:
            self._av = require_pyav(name)
            self._context = _open_decoder(self._av, fmt, name)
            self.format = fmt
        elif fmt != self.format:
            raise InputError(f"{name}: format {fmt!r} in a {self.format!r} stream; a topic holds one stream")
        error = None
        try:
            frames = self._context.decode(self._av.Packet(bytes(msg.data)))
        except self._av.error.FFmpegError as exc:
            frames, error = [], exc
        if not frames and not self._pictures:
            raise BeforeKeyframe(f"{name}: no picture before the stream's first keyframe (the recording starts "
                                 f"inside a group of pictures){f': {error}' if error else ''}")  # fmt: skip
        if error is not None:
            raise InputError(f"{name}: {self.format} frame does not decode: {error}") from error
        if not frames:
            raise InputError(f"{name}: the {self.format} decoder gave no picture for this message (a stream "
                             "with B-frames or hidden frames: one picture per message is expected)")  # fmt: skip
        if len(frames) > 1:  # pictures held back by the decoder: the last is this message's
            log.warning("%s: %d pictures for one message; keeping the last", name, len(frames))
        self._pictures += 1
        return frames[-1].to_ndarray(format="rgb24")


def _open_decoder(av, fmt: str, name: str):
    """A PyAV decoding context for the schema's `format`, with slice threads only (frame threads
    hold pictures back: a message would no longer give its own picture)."""
    if fmt not in DECODERS:
        raise InputError(f"{name}: video format {fmt!r} is not supported; expected one of {', '.join(DECODERS)} "
                         "(foxglove_msgs/CompressedVideo)")  # fmt: skip
    context = av.CodecContext.create(DECODERS[fmt], "r")
    context.thread_type = "SLICE"
    context.options = DECODER_OPTIONS.get(DECODERS[fmt], {})
    return context


def require_pyav(name: str = "video"):
    """The `av` module, or a ConfigError that says how to install it."""
    try:
        import av
    except ImportError as exc:
        raise ConfigError(f"{name}: reading a video topic needs PyAV: pip install -e '.[video]' (or av==18.1.0; "
                          "on a ROS machine the python3-av package)") from exc  # fmt: skip
    return av

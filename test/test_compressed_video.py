"""Video topics: real H.264 / H.265 / VP9 / AV1 streams encoded with FFmpeg's encoders (PyAV), as
foxglove_compressed_video_transport records them in foxglove_msgs/CompressedVideo (no B-frames, one
picture per message, parameter sets with each keyframe) and as ffmpeg_image_transport publishes them
in FFMPEGPacket (its encoder's settings), in real CDR messages and MCAP bags."""

import logging
from fractions import Fraction

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer

from mhr2_ros.cli import main
from mhr2_ros.errors import InputError
from mhr2_ros.io.compressed_video import COMPRESSED_VIDEO, FFMPEG_PACKET, VideoDecoder, stream_format
from mhr2_ros.io.rosbag import BagImageReader
from test_rosbag import FRAME, STORE, T0, read_topics

av = pytest.importorskip("av")  # the `video` extra, which `make test` installs

VIDEO_TOPIC = "/cam/image_raw/foxglove"
# FFmpeg encoder and its options per CompressedVideo format: no B-frames, no look-ahead, a keyframe every GOP
GOP = 4
ENCODERS = {
    "h264": ("libx264", {"tune": "zerolatency", "bframes": "0", "g": str(GOP)}),
    "h265": ("libx265", {"tune": "zerolatency", "x265-params": f"keyint={GOP}:repeat-headers=1:log-level=none"}),
    "vp9": ("libvpx-vp9", {"lag-in-frames": "0", "deadline": "realtime", "g": str(GOP)}),
    "av1": ("libsvtav1", {"svtav1-params": f"pred-struct=1:keyint={GOP}", "preset": "12"}),
}


@pytest.fixture(scope="module")
def frames(body_model):
    """Eight 160x120 RGB frames of the demo scene, panning 8 px a frame (each unlike its neighbours)."""
    from mhr2_ros.cli.demo_scene import render_demo_scene

    image, _ = render_demo_scene(body_model, width=160, height=120)
    return [np.ascontiguousarray(np.roll(image, 8 * i, axis=1)) for i in range(8)]


def encode(frames, fmt):
    """The stream's packets, one per frame (bytes), as the transport publishes them."""
    codec, options = ENCODERS[fmt]
    encoder = av.CodecContext.create(codec, "w")
    encoder.width, encoder.height = frames[0].shape[1], frames[0].shape[0]
    encoder.pix_fmt, encoder.time_base, encoder.options = "yuv420p", Fraction(1, 10), options
    packets = []
    for i, rgb in enumerate(frames):
        picture = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        picture.pts = i
        packets += [bytes(p) for p in encoder.encode(picture)]
    assert len(packets) == len(frames), f"{codec} held frames back: not a stream CompressedVideo allows"
    return packets


def video_msg(packet, stamp_ns, fmt, frame_id=FRAME):
    t = STORE.types["builtin_interfaces/msg/Time"](stamp_ns // 10**9, stamp_ns % 10**9)
    data = np.frombuffer(packet, np.uint8)
    return STORE.types[COMPRESSED_VIDEO](t, frame_id, data, fmt)


def received(msg):
    """The message as a subscriber or a bag reader gets it: through CDR."""
    return STORE.deserialize_cdr(STORE.serialize_cdr(msg, COMPRESSED_VIDEO), COMPRESSED_VIDEO)


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / mse)


@pytest.mark.parametrize("fmt", sorted(ENCODERS))
def test_each_message_decodes_to_its_own_picture(frames, fmt):
    decoder = VideoDecoder()
    for i, packet in enumerate(encode(frames, fmt)):
        got = decoder.decode(received(video_msg(packet, T0 + i, fmt)), f"video[{i}]")
        assert got.shape == frames[i].shape and got.dtype == np.uint8
        quality = [psnr(got, frame) for frame in frames]
        assert quality[i] > 25 and quality[i] == max(quality), (i, quality)  # this frame's, not a neighbour's


def test_a_video_bag_runs_like_its_images(tmp_path, frames, weights, caplog):
    """`mhr2 bag` on an MCAP of CompressedVideo: a HumanArray per picture, stamped with the message's
    timestamp and frame; a recording that starts inside a group of pictures skips the messages before
    its first keyframe (said once, counted) and goes on from it."""
    packets = encode(frames, "h264")[2:]  # starts two frames into the first group of GOP = 4
    stamps = [T0 + i * 100_000_000 for i in range(len(packets))]
    src = tmp_path / "in"
    with Writer(src, version=8, storage_plugin=StoragePlugin.MCAP) as w:
        conn = w.add_connection(VIDEO_TOPIC, COMPRESSED_VIDEO, typestore=STORE)
        for packet, stamp in zip(packets, stamps):
            w.write(conn, stamp + 5_000_000, STORE.serialize_cdr(video_msg(packet, stamp, "h264"), COMPRESSED_VIDEO))
    with BagImageReader(src, VIDEO_TOPIC, typestore=STORE) as reader:
        read = list(reader)
    missing = GOP - 2  # the messages before the next keyframe: skipped, and counted
    assert reader.before_keyframe == missing and "no picture before the stream's first keyframe" in caplog.text
    assert [f.stamp_ns for f in read] == stamps[missing:] and {f.frame_id for f in read} == {FRAME}
    assert [f.index for f in read] == list(range(missing, len(packets)))  # positions among the topic's messages
    for frame, original in zip(read, frames[GOP:]):
        assert frame.image is not None and psnr(frame.image, original) > 25
    caplog.set_level(logging.INFO, logger="mhr2_ros.cli.bag")
    code = main(["bag", str(src), str(tmp_path / "out"), "--image-topic", VIDEO_TOPIC, "--weights",
                 str(weights), "--threshold", "0", "--max-humans", "1", "--no-mesh-markers", "--no-track"])  # fmt: skip
    assert code == 0 and f"{missing} video message(s) before the stream's first keyframe" in caplog.text
    humans = [m for _, m in read_topics(tmp_path / "out")[0]["/humans"]]
    assert [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in humans] == stamps[missing:]
    assert all(m.header.frame_id == FRAME and (m.image_height, m.image_width) == (120, 160) for m in humans)


def test_what_is_not_a_supported_stream_is_named(frames):
    decoder = VideoDecoder()
    with pytest.raises(InputError, match=r"cam\[0\]: video format 'mjpeg' is not supported; expected one of "
                                         r"h264, h265, vp9, av1"):  # fmt: skip
        decoder.decode(video_msg(b"\xff\xd8", T0, "mjpeg"), "cam[0]")
    h264 = encode(frames[:2], "h264")
    decoder.decode(video_msg(h264[0], T0, "h264"))
    with pytest.raises(InputError, match=r"format 'vp9' in a 'h264' stream"):
        decoder.decode(video_msg(h264[1], T0, "vp9"))
    with pytest.raises(InputError, match=r"h264 frame does not decode"):
        decoder.decode(video_msg(b"\x00\x00\x00\x01\x41" + bytes(40), T0, "h264"))


@pytest.fixture(scope="module")
def weights(tmp_path_factory, tiny_config):
    from mhr2_ros.checkpoint import save_checkpoint
    from mhr2_ros.model import build_model

    return save_checkpoint(build_model(tiny_config), tiny_config, tmp_path_factory.mktemp("w") / "tiny.safetensors")


def test_the_node_path_takes_the_decoded_pictures_with_the_messages_stamps(frames, tiny_detector):
    """What detector_node does with image_transport foxglove, without ROS: the subscription decodes
    every message in order (VideoDecoder) and the session runs on the picture, stamped and framed by
    the message's own fields (CompressedVideo has no header)."""
    from test_ros_session import _image_msg, _session

    session = _session(tiny_detector)
    session.update({"camera_frame": "fallback_frame"})
    decoder, stamp = VideoDecoder(), 3_000_000_000
    for i, packet in enumerate(encode(frames[:3], "vp9")):
        msg = received(video_msg(packet, stamp + i, "vp9", frame_id="" if i == 2 else FRAME))
        picture = decoder.decode(msg, "image/foxglove")
        run = session.process(msg, False, image=picture)
        direct = session.process(_image_msg(picture, stamp + i), compressed=False)  # the same picture, raw
        assert run.header.stamp_ns == stamp + i and run.outputs.humans.header.frame_id == (
            "fallback_frame" if i == 2 else FRAME)  # no frame_id: the camera_frame parameter's
        assert [h.score for h in run.result.humans] == [h.score for h in direct.result.humans]
        assert (run.outputs.humans.image_height, run.outputs.humans.image_width) == (120, 160)


# ------------------------------------------------------------------------------ FFMPEGPacket
FFMPEG_TOPIC = "/cam/image_raw/ffmpeg"
# FFMPEGPacket.encoding as a publisher writes it -> (FFmpeg encoder making the stream, its options, the format):
# ffmpeg_image_transport's defaults (x264 "slow": frames held back by its look-ahead, but no B-frames)
# with the 2.x encoding string and the 1.x encoder names, NVENC's name on an HEVC stream, VP9
FFMPEG_STREAMS = {
    "h264;yuv420p;bgr8;bgr8": ("libx264", {"preset": "slow", "profile": "main"}, "h264"),
    "libx264": ("libx264", {"preset": "slow", "profile": "main"}, "h264"),
    "hevc_nvenc": ("libx265", {"x265-params": "bframes=0:repeat-headers=1:log-level=none"}, "h265"),
    "libvpx-vp9": ("libvpx-vp9", {"deadline": "realtime"}, "vp9"),
}


def encode_ffmpeg(frames, encoding, stamps):
    """FFMPEGPacket messages as ffmpeg_image_transport publishes them: the encoder drained after every
    frame (and at the end), each packet stamped with the stamp of its own frame (its pts)."""
    codec, options, _ = FFMPEG_STREAMS[encoding]
    encoder = av.CodecContext.create(codec, "w")
    encoder.width, encoder.height = frames[0].shape[1], frames[0].shape[0]
    encoder.pix_fmt, encoder.time_base, encoder.options = "yuv420p", Fraction(1, 10), options
    encoder.gop_size, encoder.max_b_frames = GOP, 0  # what the transport's encoder sets
    packets = []
    for i, rgb in enumerate(frames):
        picture = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        picture.pts = i
        packets += encoder.encode(picture)
    packets += encoder.encode(None)
    assert [p.pts for p in packets] == list(range(len(frames)))  # no B-frames: in display order
    header = STORE.types["std_msgs/msg/Header"]
    time = STORE.types["builtin_interfaces/msg/Time"]
    return [STORE.types[FFMPEG_PACKET](
        header(time(stamps[p.pts] // 10**9, stamps[p.pts] % 10**9), FRAME), encoder.width, encoder.height,
        encoding, p.pts, 1 if p.is_keyframe else 0, False, np.frombuffer(bytes(p), np.uint8),
    ) for p in packets]  # fmt: skip


@pytest.mark.parametrize("encoding", sorted(FFMPEG_STREAMS))
def test_ffmpeg_packets_decode_to_their_own_pictures(frames, encoding):
    stamps = [T0 + i for i in range(len(frames))]
    decoder = VideoDecoder()
    for i, msg in enumerate(encode_ffmpeg(frames, encoding, stamps)):
        msg = STORE.deserialize_cdr(STORE.serialize_cdr(msg, FFMPEG_PACKET), FFMPEG_PACKET)
        assert stream_format(msg) == FFMPEG_STREAMS[encoding][2]
        got = decoder.decode(msg, f"ffmpeg[{i}]")
        quality = [psnr(got, frame) for frame in frames]
        assert quality[i] > 25 and quality[i] == max(quality), (encoding, i, quality)


def test_an_ffmpeg_bag_skips_to_its_first_keyframe_by_the_packet_flags(tmp_path, frames, caplog):
    """An MCAP of FFMPEGPacket starting inside a group of pictures: the messages before the keyframe
    (flags without AV_PKT_FLAG_KEY) are skipped and counted; then every picture."""
    stamps = [T0 + i * 100_000_000 for i in range(len(frames))]
    messages = encode_ffmpeg(frames, "h264;yuv420p;bgr8;bgr8", stamps)[1:]
    src = tmp_path / "in"
    with Writer(src, version=8, storage_plugin=StoragePlugin.MCAP) as w:
        conn = w.add_connection(FFMPEG_TOPIC, FFMPEG_PACKET, typestore=STORE)
        for msg in messages:
            stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            w.write(conn, stamp + 5_000_000, STORE.serialize_cdr(msg, FFMPEG_PACKET))
    with BagImageReader(src, FFMPEG_TOPIC, typestore=STORE) as reader:
        read = list(reader)
    assert reader.before_keyframe == GOP - 1 and "no picture before the stream's first keyframe" in caplog.text
    assert [f.stamp_ns for f in read] == stamps[GOP:] and {f.frame_id for f in read} == {FRAME}
    for frame, original in zip(read, frames[GOP:]):
        assert psnr(frame.image, original) > 25


def test_an_ffmpeg_encoding_that_is_no_video_codec_is_named(frames):
    msg = encode_ffmpeg(frames[:1], "libx264", [T0])[0]
    msg.encoding = "mjpeg;yuvj420p;bgr8;bgr8"
    with pytest.raises(InputError, match=r"cam\[0\]: FFMPEGPacket encoding 'mjpeg;yuvj420p;bgr8;bgr8' is not a codec "
                                         r"read here; expected H.264, H.265 \(HEVC\), VP9 or AV1"):  # fmt: skip
        VideoDecoder().decode(msg, "cam[0]")

"""Sequential MCAP scan that recovers the messages of a truncated file.

A recorder that is killed (power loss, OOM, Ctrl-C twice) leaves an MCAP file
without its summary and footer, and rosbag2 leaves no metadata.yaml. rosbags
refuses such a file; this scanner reads its records front to back (schemas,
channels and messages, inside chunks or not) and stops at the first incomplete
record, so every complete message before the damage is still processed.
Record layout: https://mcap.dev/spec (opcode u8, length u64, body; little-endian).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Dict, Iterator, Tuple

MAGIC = b"\x89MCAP0\r\n"
OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK, OP_FOOTER = 0x03, 0x04, 0x05, 0x06, 0x02
_RECORD_HEAD = struct.Struct("<BQ")
_SCHEMA_HEAD = struct.Struct("<H")  # schema id
_CHANNEL_HEAD = struct.Struct("<HH")  # channel id, schema id
_MESSAGE_HEAD = struct.Struct("<HIQQ")  # channel id, sequence, log time, publish time
_CHUNK_HEAD = struct.Struct("<QQQI")  # start time, end time, uncompressed size, crc


class McapDamaged(Exception):
    """The file ends inside a record, or a record is inconsistent."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} at byte {offset}")
        self.offset = offset


@dataclass(frozen=True)
class ScannedMessage:
    topic: str
    msgtype: str  # schema name, e.g. sensor_msgs/msg/Image
    log_time: int  # nanoseconds (the bag's receive time)
    data: bytes  # CDR


def _string(buf: memoryview, pos: int) -> Tuple[str, int]:
    (size,) = struct.unpack_from("<I", buf, pos)
    pos += 4
    if pos + size > len(buf):
        raise ValueError("string runs past its record")
    return bytes(buf[pos : pos + size]).decode("utf-8"), pos + size


def _decompress(data: bytes, compression: str, size: int) -> bytes:
    if compression == "":
        return data
    if compression == "zstd":
        try:
            from compression import zstd  # Python >= 3.14
        except ImportError:
            from backports import zstd
        return zstd.decompress(data)
    if compression == "lz4":
        import lz4.frame

        return lz4.frame.decompress(data)
    raise ValueError(f"unsupported chunk compression {compression!r}")


class McapScanner:
    """Iterate the messages of an MCAP file in file order; see module docstring."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.schemas: Dict[int, str] = {}
        self.channels: Dict[int, Tuple[str, int]] = {}  # id -> (topic, schema id)

    def __iter__(self) -> Iterator[ScannedMessage]:
        self._size = self.path.stat().st_size
        with self.path.open("rb") as bio:
            if bio.read(len(MAGIC)) != MAGIC:
                raise McapDamaged("not an MCAP file (bad magic)", 0)
            yield from self._records(bio)

    def _records(self, bio: BinaryIO) -> Iterator[ScannedMessage]:
        while True:
            offset = bio.tell()
            head = bio.read(_RECORD_HEAD.size)
            if not head:
                raise McapDamaged("file ends without an MCAP footer", offset)
            if len(head) < _RECORD_HEAD.size:
                raise McapDamaged("file ends inside a record header", offset)
            op, length = _RECORD_HEAD.unpack(head)
            if length > self._size - bio.tell():  # a damaged length: do not try to read 2^40 bytes
                raise McapDamaged(f"file ends inside a record of {length} bytes (opcode {op:#x})", offset)
            body = bio.read(length)
            if len(body) < length:
                raise McapDamaged(f"file ends inside a record of {length} bytes (opcode {op:#x})", offset)
            if op == OP_FOOTER:
                return
            try:
                yield from self._record(op, memoryview(body))
            except (ValueError, struct.error, KeyError) as exc:
                raise McapDamaged(f"bad record (opcode {op:#x}): {exc}", offset) from None

    def _record(self, op: int, body: memoryview) -> Iterator[ScannedMessage]:
        if op == OP_SCHEMA:  # id u16, name, encoding, data
            (sid,) = _SCHEMA_HEAD.unpack_from(body, 0)
            self.schemas[sid], _ = _string(body, _SCHEMA_HEAD.size)
        elif op == OP_CHANNEL:  # id u16, schema id u16, topic, encoding, metadata
            cid, sid = _CHANNEL_HEAD.unpack_from(body, 0)
            topic, _ = _string(body, _CHANNEL_HEAD.size)
            self.channels[cid] = (topic, sid)
        elif op == OP_MESSAGE:
            cid, _, log_time, _ = _MESSAGE_HEAD.unpack_from(body, 0)
            topic, sid = self.channels[cid]
            yield ScannedMessage(topic, self.schemas.get(sid, ""), log_time, bytes(body[_MESSAGE_HEAD.size :]))
        elif op == OP_CHUNK:
            yield from self._chunk(body)

    def _chunk(self, body: memoryview) -> Iterator[ScannedMessage]:
        _, _, size, crc = _CHUNK_HEAD.unpack_from(body, 0)
        compression, pos = _string(body, _CHUNK_HEAD.size)
        (length,) = struct.unpack_from("<Q", body, pos)
        pos += 8
        if pos + length > len(body):
            raise ValueError("chunk records run past the chunk")
        data = _decompress(bytes(body[pos : pos + length]), compression, size)
        if len(data) != size or (crc and zlib.crc32(data) != crc):
            raise ValueError("chunk size or CRC mismatch")
        inner = memoryview(data)
        pos = 0
        while pos < len(inner):
            op, rec_len = _RECORD_HEAD.unpack_from(inner, pos)
            pos += _RECORD_HEAD.size
            if pos + rec_len > len(inner):
                raise ValueError("record runs past its chunk")
            yield from self._record(op, inner[pos : pos + rec_len])
            pos += rec_len

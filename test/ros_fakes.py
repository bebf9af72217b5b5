"""Stand-ins for rosidl-generated message classes and tracker tracks, for tests without ROS.

They are as strict as the setters rclpy generates (exact Python scalar types,
array.array for numeric sequences, numpy arrays of the right dtype and size for
fixed arrays, bytes for `byte`), so GeneratedFactory is tested as on a robot.
"""

import array
import dataclasses

import numpy as np


# How rclpy holds numeric sequences: array.array type codes (unbounded), numpy dtypes (fixed arrays).
SEQ_CODES = {"float32": "f", "float64": "d", "int8": "b", "uint8": "B", "int16": "h", "uint16": "H",
             "int32": "i", "uint32": "I", "int64": "q", "uint64": "Q"}  # fmt: skip
NP_TYPES = {"float32": np.float32, "float64": np.float64, "uint8": np.uint8, "uint32": np.uint32,
            "int32": np.int32, "int64": np.int64, "uint64": np.uint64}  # fmt: skip


def fake_generated_classes(store):
    """Stand-ins for rosidl-generated classes, as strict as rclpy's setters."""
    classes = {}
    seq_codes, np_types = SEQ_CODES, NP_TYPES

    def check(desc, value):
        kind, arg = desc
        kind = kind.name
        if kind == "BASE":
            base = arg[0]
            expected = {"string": str, "bool": bool, "byte": bytes, "float32": float, "float64": float}.get(base, int)
            assert isinstance(value, expected), f"{base} field got {type(value).__name__}"
            return value
        if kind == "NAME":
            assert isinstance(value, resolve(arg)), f"expected {arg}"
            return value
        (sub_kind, sub_arg), size = arg
        if sub_kind.name == "BASE" and sub_arg[0] in seq_codes:
            if kind == "ARRAY":
                assert isinstance(value, np.ndarray) and value.dtype == np_types[sub_arg[0]] and value.size == size
                return value
            assert isinstance(value, array.array) and value.typecode == seq_codes[sub_arg[0]]
            return value
        assert isinstance(value, list)
        return value

    def default(desc):
        kind, arg = desc
        kind = kind.name
        if kind == "BASE":
            return {"string": "", "bool": False, "byte": b"\x00", "float32": 0.0, "float64": 0.0}.get(arg[0], 0)
        if kind == "NAME":
            return resolve(arg)()
        (sub_kind, sub_arg), size = arg
        if sub_kind.name == "BASE" and sub_arg[0] in seq_codes:
            return np.zeros(size, np_types[sub_arg[0]]) if kind == "ARRAY" else array.array(seq_codes[sub_arg[0]])
        return [default((sub_kind, sub_arg)) for _ in range(size)] if kind == "ARRAY" else []

    def resolve(typename):
        if typename not in classes:
            fields = dict(store.fielddefs[typename][1])

            class Generated:
                __msgtype__ = typename

                @classmethod
                def get_fields_and_field_types(cls):
                    return {name: "?" for name in fields}

                def __init__(self, **kwargs):
                    assert set(kwargs) <= set(fields), f"unknown fields {set(kwargs) - set(fields)}"
                    for name, desc in fields.items():
                        setattr(self, name, check(desc, kwargs[name]) if name in kwargs else default(desc))

            classes[typename] = Generated
        return classes[typename]

    return resolve


def to_rosbags(store, msg):
    """A stand-in message converted field by field to the rosbags class."""
    typename = type(msg).__msgtype__
    values = {}
    for name, (kind, arg) in store.fielddefs[typename][1]:
        value = getattr(msg, name)
        if kind.name == "NAME":
            value = to_rosbags(store, value)
        elif isinstance(value, array.array):
            value = np.frombuffer(value.tobytes(), dtype=np.dtype(value.typecode)).copy()
        elif isinstance(value, bytes):
            value = value[0]
        elif isinstance(value, list) and value and hasattr(value[0], "__msgtype__"):
            value = [to_rosbags(store, v) for v in value]
        values[name] = value
    return store.types[typename](**values)


@dataclasses.dataclass
class FakeTrack:
    """What the tracker's Track offers (duck-typed by the builders)."""

    id: str
    state: str
    human: object
    velocity: np.ndarray
    velocity_cov: np.ndarray
    age: float = 1.5
    time_since_seen: float = 0.0
    position: object = None  # (3,) the motion model's pelvis (None: not given)
    position_cov: object = None  # (3, 3)
    orientation: object = None  # (3, 3) the track's (None: the detection's)
    heading_from_velocity: bool = False


def fake_tracks(frame, states=("tracked", "new", "occluded")):
    return [
        FakeTrack(f"t{i}", state, h, np.array([0.5, 0.0, -0.2 * i]), np.eye(3) * 0.01)
        for i, (h, state) in enumerate(zip(frame.humans, states))
    ]


def assert_msg_equal(a, b, where="msg"):
    """Deep equality of rosbags messages (numpy fields compared by value)."""
    if dataclasses.is_dataclass(a):
        assert type(a).__msgtype__ == type(b).__msgtype__, where
        for f in dataclasses.fields(a):
            assert_msg_equal(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert a.dtype == np.asarray(b).dtype and np.array_equal(a, b), where
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_msg_equal(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def round_trip(store, msg):
    typename = type(msg).__msgtype__
    data = store.serialize_cdr(msg, typename)
    back = store.deserialize_cdr(data, typename)
    assert_msg_equal(msg, back)
    return bytes(data)

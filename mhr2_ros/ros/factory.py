"""MessageFactory: one message-building code path for rclpy and for rosbags.

Builders call `factory.new("geometry_msgs/msg/Point", x=1.0, y=2.0, z=3.0)` and never
touch a message class directly. Two implementations:

- `RosbagsFactory` fills rosbags' dataclasses (tests, `mhr2 bag`): what the tests
  serialize is then the ROS 2 wire format (CDR) of the very same messages.
- `GeneratedFactory` fills rosidl-generated classes (rclpy, on a robot).

Both share the same contract, which is the rclpy one: fields not given take the
ROS default (zero, empty string, empty sequence, default sub-message), an unknown
field name is an error, and array fields accept numpy arrays. Each factory converts
values to what its classes require: numpy arrays of the field's dtype for rosbags;
`array.array` for rclpy sequences, numpy for rclpy fixed arrays, and plain Python
float/int/bool/bytes scalars, since rclpy's setters assert exact Python types (a
numpy.float32 is not a float to them).
"""

from __future__ import annotations

import array
import contextlib
import gc
import importlib
from abc import ABC, abstractmethod
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

NS_PER_S = 1_000_000_000
POINT = "geometry_msgs/msg/Point"

# rosbags base type name -> numpy dtype of its arrays.
ROSBAGS_DTYPES = {
    "bool": np.bool_, "byte": np.uint8, "char": np.uint8,
    "int8": np.int8, "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16,
    "int32": np.int32, "uint32": np.uint32, "int64": np.int64, "uint64": np.uint64,
    "float32": np.float32, "float64": np.float64,
}  # fmt: skip
# array.array typecode -> numpy dtype (rclpy stores numeric sequences in array.array).
TYPECODE_DTYPES = {
    "b": np.int8, "B": np.uint8, "h": np.int16, "H": np.uint16, "i": np.int32, "I": np.uint32,
    "l": np.int64, "L": np.uint64, "q": np.int64, "Q": np.uint64, "f": np.float32, "d": np.float64,
}  # fmt: skip


@contextlib.contextmanager
def gc_paused():
    """Pause the cyclic garbage collector while making many small acyclic messages.

    A mesh marker is ~20k-80k Point objects; each allocation burst triggers
    collections that scan every live object (torch included), which more than
    doubles the build time. Points hold no cycles, so nothing is lost by waiting.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class MessageFactory(ABC):
    """Given a full type name ("pkg/msg/Name") and fields, returns a message."""

    @abstractmethod
    def new(self, typename: str, **fields: Any) -> Any:
        """A message of `typename`; missing fields take their ROS default."""

    @abstractmethod
    def has_type(self, typename: str) -> bool:
        """Whether `typename` can be made (optional packages: people_msgs, hri_msgs)."""

    def points(self, xyz: np.ndarray) -> List[Any]:
        """geometry_msgs/Point per row of an (N, 3) array (bulk: meshes have ~80k)."""
        with gc_paused():
            return [self.new(POINT, x=x, y=y, z=z) for x, y, z in np.asarray(xyz, np.float64).tolist()]

    def time(self, stamp_ns: int) -> Any:
        """builtin_interfaces/Time from integer nanoseconds (non-negative nanosec part)."""
        sec, nanosec = divmod(int(stamp_ns), NS_PER_S)
        return self.new("builtin_interfaces/msg/Time", sec=sec, nanosec=nanosec)

    def header(self, stamp_ns: int, frame_id: str) -> Any:
        return self.new("std_msgs/msg/Header", stamp=self.time(stamp_ns), frame_id=frame_id)


# ----------------------------------------------------------------------------- rosbags
class RosbagsFactory(MessageFactory):
    """Messages as rosbags dataclasses of `typestore` (see mhr2_ros.ros.typestore)."""

    def __init__(self, typestore) -> None:
        self.typestore = typestore
        self._fields: Dict[str, Tuple[Tuple[str, tuple], ...]] = {}

    def new(self, typename: str, **fields: Any) -> Any:
        defs = self._field_defs(typename)
        names = {name for name, _ in defs}
        unknown = sorted(set(fields) - names)
        if unknown:
            raise TypeError(f"{typename} has no field(s) {unknown}; fields: {sorted(names)}")
        values = {}
        for name, desc in defs:
            values[name] = self._coerce(desc, fields[name]) if name in fields else self._default(desc)
        return self.typestore.types[typename](**values)

    def has_type(self, typename: str) -> bool:
        return typename in self.typestore.fielddefs

    def points(self, xyz: np.ndarray) -> List[Any]:
        cls = self.typestore.types[POINT]
        with gc_paused():
            return [cls(x, y, z) for x, y, z in np.asarray(xyz, np.float64).tolist()]

    def _field_defs(self, typename: str):
        defs = self._fields.get(typename)
        if defs is None:
            if typename not in self.typestore.fielddefs:
                raise KeyError(f"unknown message type {typename!r}")
            defs = tuple(self.typestore.fielddefs[typename][1])
            self._fields[typename] = defs
        return defs

    def _coerce(self, desc: tuple, value: Any) -> Any:
        kind, arg = desc
        kind = getattr(kind, "name", kind)
        if kind == "BASE":
            return _scalar(arg[0], value)
        if kind in ("ARRAY", "SEQUENCE"):
            (sub_kind, sub_arg), size = arg
            dtype = ROSBAGS_DTYPES.get(sub_arg[0]) if getattr(sub_kind, "name", sub_kind) == "BASE" else None
            if dtype is None:
                out = list(value)
            else:
                out = np.ascontiguousarray(value, dtype=dtype).reshape(-1)
            if kind == "ARRAY" and len(out) != size:
                raise ValueError(f"fixed array needs {size} values, got {len(out)}")
            return out
        return value  # NAME: a sub-message built by this factory

    def _default(self, desc: tuple) -> Any:
        kind, arg = desc
        kind = getattr(kind, "name", kind)
        if kind == "BASE":
            return _scalar(arg[0], None)
        if kind == "NAME":
            return self.new(arg)
        (sub_kind, sub_arg), size = arg
        sub_kind = getattr(sub_kind, "name", sub_kind)
        dtype = ROSBAGS_DTYPES.get(sub_arg[0]) if sub_kind == "BASE" else None
        count = size if kind == "ARRAY" else 0
        if dtype is not None:
            return np.zeros(count, dtype=dtype)
        return [self._default((sub_kind, sub_arg)) for _ in range(count)]


def _scalar(base: str, value: Any) -> Any:
    """A rosbags scalar of base type `base` from `value` (None: the default)."""
    if base in ("string", "wstring"):
        return "" if value is None else str(value)
    if base == "bool":
        return False if value is None else bool(value)
    if base == "float32":  # rounded as on the wire, so a message equals its round trip
        return 0.0 if value is None else float(np.float32(value))
    if base == "float64":
        return 0.0 if value is None else float(value)
    return 0 if value is None else int(value)


# -------------------------------------------------------------------- rclpy (generated)
def import_message_class(typename: str) -> type:
    """The rosidl-generated class of "pkg/msg/Name" (import pkg.msg, take Name)."""
    package, kind, name = typename.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


class GeneratedFactory(MessageFactory):
    """Messages as rosidl-generated Python classes (what rclpy publishes).

    Field kinds are read from a default-constructed instance, so this needs nothing
    but the classes: numpy.ndarray -> fixed numeric array, array.array -> numeric
    sequence, bytes -> byte, list -> sequence of strings or messages.
    """

    def __init__(self, resolve: Callable[[str], type] = import_message_class) -> None:
        self._resolve = resolve
        self._classes: Dict[str, Tuple[type, Dict[str, Any]]] = {}

    def new(self, typename: str, **fields: Any) -> Any:
        cls, defaults = self._class(typename)
        unknown = sorted(set(fields) - set(defaults))
        if unknown:
            raise TypeError(f"{typename} has no field(s) {unknown}; fields: {sorted(defaults)}")
        return cls(**{name: _to_generated(defaults[name], value) for name, value in fields.items()})

    def has_type(self, typename: str) -> bool:
        try:
            self._class(typename)
        except (ImportError, AttributeError, KeyError):  # package not installed / no such message
            return False
        return True

    def points(self, xyz: np.ndarray) -> List[Any]:
        cls, _ = self._class(POINT)
        with gc_paused():
            return [cls(x=x, y=y, z=z) for x, y, z in np.asarray(xyz, np.float64).tolist()]

    def _class(self, typename: str):
        entry = self._classes.get(typename)
        if entry is None:
            cls = self._resolve(typename)
            instance = cls()
            defaults = {name: getattr(instance, name) for name in cls.get_fields_and_field_types()}
            entry = self._classes[typename] = (cls, defaults)
        return entry


def _to_generated(default: Any, value: Any) -> Any:
    """`value` in the Python type a generated setter accepts, judged by the field's default."""
    if isinstance(default, np.ndarray):
        return np.ascontiguousarray(value, dtype=default.dtype).reshape(-1)
    if isinstance(default, array.array):
        dtype = TYPECODE_DTYPES[default.typecode]
        return array.array(default.typecode, np.ascontiguousarray(value, dtype=dtype).tobytes())
    if isinstance(default, bytes):
        return bytes([int(value)]) if not isinstance(value, bytes) else value
    if isinstance(default, bool):
        return bool(value)
    if isinstance(default, float):
        return float(value)
    if isinstance(default, int):
        return int(value)
    if isinstance(default, str):
        return str(value)
    if isinstance(default, list):
        return list(value)
    return value

"""The only way data crosses between the judge and the student process: frames of JSON plus raw buffers.

Nothing here ever unpickles. A value is encoded as a small JSON tree whose leaves are plain scalars,
numeric numpy arrays / torch tensors (raw bytes + dtype + shape), or a *handle*: an opaque id naming an
object that stays in the process that owns it. Subclasses of builtins are encoded by their base value
(so a `float` subclass with a lying `__eq__` arrives as a plain float). Decoding builds exact builtin
types and fresh numpy arrays, and refuses anything else.

This module runs on both sides of the sandbox: it needs only the standard library and numpy (torch is
imported only when a tensor is actually met).
"""

from __future__ import annotations

import json
import os
import struct

import numpy as np

MAX_HEADER_BYTES = 64 * 1024 * 1024
MAX_BUFFER_BYTES = 1024 * 1024 * 1024
MAX_DEPTH = 32
MAX_ITEMS = 200_000
MAX_STR = 1_000_000
NUMERIC_KINDS = "biufc"


class WireError(Exception):
    """The other side sent something that is not a valid frame or value."""


# --- framing -------------------------------------------------------------------------------------------


PIPE_BYTES = 1 << 20  # big arrays cross in 1 MiB pipe writes instead of 64 KiB ones


def widen_pipe(fd: int) -> None:
    """Give a pipe a 1 MiB buffer (Linux), so large arrays need fewer context switches."""
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError):
        pass  # not Linux, or over the system's pipe-max-size: the default size still works


def _read_exact(fd: int, size: int) -> bytearray:
    data = bytearray(size)
    view, filled = memoryview(data), 0
    while filled < size:
        count = os.readv(fd, [view[filled:]])
        if not count:
            raise EOFError("the other side closed the channel")
        filled += count
    return data


def _write_all(fd: int, data) -> None:
    view = memoryview(data).cast("B")
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_frame(fd: int, header: dict, buffers: list) -> None:
    """Buffers (bytes, or memoryviews of contiguous arrays) are written as they are, without a copy."""
    body = json.dumps(header, allow_nan=False).encode()
    small = [struct.pack("!QI", len(body), len(buffers)), body]
    for buffer in buffers:
        size = memoryview(buffer).nbytes
        small.append(struct.pack("!Q", size))
        if size > 64 * 1024:
            _write_all(fd, b"".join(small))
            _write_all(fd, buffer)
            small = []
        else:
            small.append(bytes(buffer))
    if small:
        _write_all(fd, b"".join(small))


def read_frame(fd: int) -> tuple[dict, list[bytearray]]:
    size, count = struct.unpack("!QI", _read_exact(fd, 12))
    if size > MAX_HEADER_BYTES or count > MAX_ITEMS:
        raise WireError(f"frame too large ({size} bytes, {count} buffers)")
    try:
        header = json.loads(_read_exact(fd, size))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WireError(f"frame header is not JSON: {error}") from None
    if not isinstance(header, dict):
        raise WireError("frame header is not an object")
    buffers, total = [], 0
    for _ in range(count):
        (length,) = struct.unpack("!Q", _read_exact(fd, 8))
        total += length
        if total > MAX_BUFFER_BYTES:
            raise WireError("frame buffers too large")
        buffers.append(_read_exact(fd, length))
    return header, buffers


# --- encoding --------------------------------------------------------------------------------------------


class Encoder:
    """Turns a value into (tree, buffers). Objects that are not data become handles via `make_handle`."""

    def __init__(self, make_handle):
        self.make_handle = make_handle
        self.buffers: list[bytes] = []
        self.items = 0

    def encode(self, value, depth: int = 0) -> dict:
        self.items += 1
        if depth > MAX_DEPTH or self.items > MAX_ITEMS:
            return self.make_handle(value)
        if value is None:
            return {"k": "none"}
        if isinstance(value, np.generic):  # before float: np.float64 is a float subclass
            return self._array(np.asarray(value), scalar=True) or self.make_handle(value)
        if isinstance(value, bool):
            return {"k": "bool", "v": value is True}
        if isinstance(value, int) and not isinstance(value, bool):
            return {"k": "int", "v": int.__repr__(value)}
        if isinstance(value, float):
            return {"k": "float", "v": float.__repr__(value)}
        if isinstance(value, complex):
            return {"k": "complex", "re": float.__repr__(value.real), "im": float.__repr__(value.imag)}
        if isinstance(value, str):
            text = str.__str__(value)
            return {"k": "str", "v": text if len(text) <= MAX_STR else text[:MAX_STR]}
        if isinstance(value, np.ndarray):
            return self._array(value) or self.make_handle(value)
        if isinstance(value, (list, tuple)):
            items = list.__iter__(value) if isinstance(value, list) else tuple.__iter__(value)
            name = "list" if isinstance(value, list) else "tuple"
            return {"k": name, "items": [self.encode(item, depth + 1) for item in items]}
        if isinstance(value, dict):
            pairs = []
            for key, item in dict.items(value):
                if not isinstance(key, (str, int, float, bool, tuple)) and key is not None:
                    return self.make_handle(value)
                pairs.append([self.encode(key, depth + 1), self.encode(item, depth + 1)])
            return {"k": "dict", "items": pairs}
        if _is_tensor(value):
            return self._tensor(value) or self.make_handle(value)
        return self.make_handle(value)

    def _add_buffer(self, data) -> int:
        self.buffers.append(data)
        return len(self.buffers) - 1

    def _array(self, array: np.ndarray, scalar: bool = False) -> dict | None:
        base = np.ndarray.view(array, np.ndarray)
        if base.dtype.kind not in NUMERIC_KINDS or base.dtype.hasobject:
            return None
        data = base if base.flags.c_contiguous else base.copy(order="C")
        return {
            "k": "npscalar" if scalar else "ndarray",
            "dtype": data.dtype.str,
            "shape": list(data.shape),
            "buf": self._add_buffer(_raw(data)),
        }

    def _tensor(self, tensor) -> dict | None:
        import torch

        try:
            plain = torch.Tensor.as_subclass(tensor, torch.Tensor).detach()
        except (RuntimeError, NotImplementedError):  # a sparse tensor has no storage to view
            return None
        if plain.device.type == "meta" or plain.layout != torch.strided:
            return None  # no data to copy (meta) or not one buffer: it stays remote, as a handle
        plain = plain.to("cpu").contiguous()
        dtype = str(plain.dtype).removeprefix("torch.")
        if plain.dtype == torch.bfloat16:
            array = plain.view(torch.int16).numpy()
        elif plain.dtype.is_complex or plain.dtype.is_floating_point or dtype in _TORCH_INT_TYPES:
            array = plain.numpy()
        else:
            return None
        return {
            "k": "tensor",
            "dtype": dtype,
            "shape": list(array.shape),
            "buf": self._add_buffer(_raw(array)),
            "requires_grad": bool(tensor.requires_grad),
        }


def _raw(array: np.ndarray) -> memoryview | bytes:
    """The array's bytes in C order: a view when it is contiguous (no copy), else a copy."""
    if array.flags.c_contiguous and array.size:
        return memoryview(np.ndarray.view(array.reshape(-1), np.uint8))
    return np.ndarray.tobytes(array, order="C")


_TORCH_INT_TYPES = {"bool", "uint8", "int8", "int16", "int32", "int64"}


def _is_tensor(value) -> bool:
    module = type(value).__module__ or ""
    if not (module.startswith("torch") or "torch" in {c.__module__.split(".")[0] for c in type(value).__mro__}):
        return False
    import torch

    return isinstance(value, torch.Tensor)


def encode(value, make_handle) -> tuple[dict, list[bytes]]:
    encoder = Encoder(make_handle)
    tree = encoder.encode(value)
    return tree, encoder.buffers


# --- decoding -------------------------------------------------------------------------------------------


def decode(tree, buffers: list[bytes], make_proxy, depth: int = 0):
    """Build plain values from a tree; `make_proxy(tree)` turns a handle into the caller's stand-in."""
    if depth > MAX_DEPTH + 1 or not isinstance(tree, dict):
        raise WireError("malformed value")
    kind = tree.get("k")
    if kind == "none":
        return None
    if kind == "bool":
        return _typed(tree["v"], bool)
    if kind == "int":
        text = _typed(tree["v"], str)
        if len(text) > 5000:
            raise WireError("integer too long")
        return int(text)
    if kind == "float":
        return _parse_float(tree["v"])
    if kind == "complex":
        return complex(_parse_float(tree["re"]), _parse_float(tree["im"]))
    if kind == "str":
        return _typed(tree["v"], str)
    if kind in ("list", "tuple"):
        items = [decode(item, buffers, make_proxy, depth + 1) for item in _typed(tree["items"], list)]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        result = {}
        for pair in _typed(tree["items"], list):
            if not isinstance(pair, list) or len(pair) != 2:
                raise WireError("malformed dict item")
            key = decode(pair[0], buffers, make_proxy, depth + 1)
            try:
                hash(key)
            except TypeError:
                raise WireError("unhashable dict key") from None
            result[key] = decode(pair[1], buffers, make_proxy, depth + 1)
        return result
    if kind in ("ndarray", "npscalar"):
        array = _array(tree, buffers, np.dtype(_checked_dtype(tree["dtype"])))
        return array[()] if kind == "npscalar" else array
    if kind == "tensor":
        return _tensor(tree, buffers)
    if kind == "handle":
        return make_proxy(tree)
    raise WireError(f"unknown value kind {kind!r}")


def _typed(value, kind):
    if type(value) is not kind:
        raise WireError(f"expected {kind.__name__}")
    return value


def _parse_float(text) -> float:
    text = _typed(text, str)
    if len(text) > 64:
        raise WireError("float too long")
    try:
        return float(text)
    except ValueError:
        raise WireError(f"not a float: {text[:20]!r}") from None


def _checked_dtype(text) -> str:
    text = _typed(text, str)
    dtype = np.dtype(text)
    if dtype.kind not in NUMERIC_KINDS or dtype.hasobject or dtype.fields is not None or dtype.subdtype:
        raise WireError(f"refused dtype {text!r}")
    return text


def _array(tree: dict, buffers: list[bytes], dtype: np.dtype) -> np.ndarray:
    shape = tuple(_typed(n, int) for n in _typed(tree["shape"], list))
    if any(n < 0 for n in shape):
        raise WireError("negative dimension")
    index = _typed(tree["buf"], int)
    if not 0 <= index < len(buffers):
        raise WireError("missing buffer")
    data = buffers[index]
    if len(data) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
        raise WireError("buffer size does not match shape and dtype")
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    return array if isinstance(data, bytearray) else array.copy()  # a frame's bytearray belongs to this array


def _tensor(tree: dict, buffers: list[bytes]):
    import torch

    name = _typed(tree["dtype"], str)
    torch_dtype = getattr(torch, name, None)
    if not isinstance(torch_dtype, torch.dtype):
        raise WireError(f"refused tensor dtype {name!r}")
    if torch_dtype == torch.bfloat16:
        array = _array(tree, buffers, np.dtype(np.int16))
        tensor = torch.from_numpy(array).view(torch.bfloat16)
    else:
        numpy_dtype = torch.empty((), dtype=torch_dtype).numpy().dtype
        tensor = torch.from_numpy(_array(tree, buffers, numpy_dtype))
    if tree.get("requires_grad") is True and (tensor.is_floating_point() or tensor.is_complex()):
        tensor.requires_grad_(True)
    return tensor

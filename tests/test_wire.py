"""The wire codec: plain data crosses, everything else stays behind as a handle, nothing is unpickled."""

import importlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from autograder.sandbox.inside import wire


def roundtrip(value):
    handles = []

    def make_handle(obj):
        handles.append(obj)
        return {"k": "handle", "id": len(handles), "type": type(obj).__name__, "callable": callable(obj)}

    tree, buffers = wire.encode(value, make_handle)
    return wire.decode(tree, buffers, lambda t: ("HANDLE", t["type"])), handles


def test_plain_values_roundtrip_exactly():
    value = {"a": [1, 2.5, None, True, "x"], 3: (float("nan"), float("inf"), -0.0, 10**30, 1 + 2j)}
    back, handles = roundtrip(value)
    assert handles == []
    assert back["a"] == [1, 2.5, None, True, "x"] and type(back[3]) is tuple
    assert np.isnan(back[3][0]) and back[3][1] == float("inf") and back[3][3] == 10**30


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.uint8, np.bool_, np.complex128])
def test_numeric_arrays_roundtrip_as_fresh_writable_copies(dtype):
    array = (np.arange(24).reshape(2, 3, 4) % 3).astype(dtype)
    back, _ = roundtrip(array[:, ::2])
    assert type(back) is np.ndarray and back.dtype == dtype and back.flags.writeable
    np.testing.assert_array_equal(back, array[:, ::2])


def test_numpy_scalars_and_tensors():
    back, _ = roundtrip([np.float64(1.5), np.int32(7), torch.arange(6.0).reshape(2, 3).requires_grad_()])
    assert type(back[0]) is np.float64 and back[1] == 7 and back[1].dtype == np.int32
    assert type(back[2]) is torch.Tensor and back[2].requires_grad and back[2].shape == (2, 3)
    bf16, _ = roundtrip(torch.ones(3, dtype=torch.bfloat16))
    assert bf16.dtype == torch.bfloat16 and bf16.sum().item() == 3


def test_lying_subclasses_arrive_as_their_base_values():
    class Liar(float):
        def __eq__(self, other):
            return True

    class LiarList(list):
        def __eq__(self, other):
            return True

    class LiarArray(np.ndarray):
        def __eq__(self, other):
            return True

    class LiarTensor(torch.Tensor):
        def __eq__(self, other):
            return True

    back, handles = roundtrip(
        [Liar(2.0), LiarList([1]), np.zeros(2).view(LiarArray), torch.zeros(2).as_subclass(LiarTensor)]
    )
    assert [type(v) for v in back] == [float, list, np.ndarray, torch.Tensor] and handles == []
    assert back[0] == 2.0 and back[1] != [2]


def test_objects_and_object_arrays_stay_behind_as_handles():
    back, handles = roundtrip([lambda: 1, np.array([1, "a"], dtype=object), object()])
    assert [b[0] for b in back] == ["HANDLE"] * 3 and len(handles) == 3


def test_tensors_without_data_stay_behind_as_handles():
    """A meta tensor (a model moved to device="meta" by a test) has no data to send; a sparse one is no
    single buffer. Both stay in the student process; neither may break the answer."""
    back, handles = roundtrip([torch.zeros(2, 3, device="meta"), torch.eye(2).to_sparse(), torch.ones(2)])
    assert [b[0] for b in back[:2]] == ["HANDLE"] * 2 and len(handles) == 2
    assert torch.equal(back[2], torch.ones(2))


@pytest.mark.parametrize(
    "tree, buffers",
    [
        ({"k": "ndarray", "dtype": "|O", "shape": [1], "buf": 0}, [b"12345678"]),
        ({"k": "ndarray", "dtype": "<f8", "shape": [3], "buf": 0}, [b"12345678"]),
        ({"k": "ndarray", "dtype": "<f8", "shape": [1], "buf": 5}, [b"12345678"]),
        ({"k": "pickle", "v": "gASVAAAA"}, []),
        ({"k": "int", "v": "9" * 10000}, []),
        ({"k": "tensor", "dtype": "Tensor", "shape": [1], "buf": 0}, [b"1234"]),
        ({"k": "dict", "items": [[{"k": "list", "items": []}, {"k": "none"}]]}, []),
        ("not a tree", []),
    ],
)
def test_malformed_or_dangerous_values_are_refused(tree, buffers):
    with pytest.raises(wire.WireError):
        wire.decode(tree, buffers, lambda t: None)


def test_frames_roundtrip_and_truncation_is_detected():
    read_fd, write_fd = os.pipe()
    wire.write_frame(write_fd, {"op": "x"}, [b"abc", b""])
    assert wire.read_frame(read_fd) == ({"op": "x"}, [b"abc", b""])
    os.write(write_fd, b"\x00\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00\x00{")
    os.close(write_fd)
    with pytest.raises(EOFError):
        wire.read_frame(read_fd)
    os.close(read_fd)


def test_large_arrays_cross_a_pipe_intact_and_independent():
    """Arrays bigger than a pipe's buffer go out as views and arrive as their own writable arrays."""
    import threading

    arrays = [np.arange(300_000, dtype=np.float64).reshape(600, 500), np.ones((700, 800))[:, ::3], np.zeros(0)]
    read_fd, write_fd = os.pipe()
    wire.widen_pipe(write_fd)
    tree, buffers = wire.encode(arrays, lambda obj: pytest.fail("no handles expected"))
    writer = threading.Thread(target=wire.write_frame, args=(write_fd, {"value": tree}, buffers))
    writer.start()
    header, received = wire.read_frame(read_fd)
    writer.join()
    os.close(read_fd)
    os.close(write_fd)
    back = wire.decode(header["value"], received, lambda t: None)
    arrays[0][0, 0] = -1.0  # the sender's array changes after sending: the received copy does not
    assert back[0][0, 0] == 0.0 and back[0].flags.writeable
    for sent, got in zip(arrays[1:], back[1:], strict=True):
        np.testing.assert_array_equal(got, sent)
    np.testing.assert_array_equal(back[0].ravel()[1:], np.arange(1, 300_000))


def test_objects_the_judge_drops_are_released_in_the_student_process(monkeypatch):
    """A handle pins its object in the student process; once the judge's stand-in is gone, the next
    request tells the student process to let it go (a long test would otherwise keep every result)."""
    from autograder.grading.proxy import StudentLink

    monkeypatch.syspath_prepend(str(Path(wire.__file__).parent))
    runner = importlib.import_module("student_runner").Runner(-1, -1)
    runner.namespace["make"] = lambda: object()

    class Direct:  # StudentProcess.request without the pipe: the runner answers at once
        def request(self, header, buffers, timeout):
            tree, answer_buffers = wire.encode(runner.handle(header, buffers), runner.make_handle)
            return {"ok": True, "value": tree}, answer_buffers

    link = StudentLink(Direct())
    make = link.bind(["make"])[1]["make"]
    kept = make()
    for _ in range(50):
        make()  # each result dropped at once
    assert len(runner.handles) == 3  # each request released the result dropped before it, but the last
    link.bind([])
    assert set(runner.handles) == {make._id, kept._id}

"""Judge-side stand-ins for objects that live in the student process.

A `StudentObject` can be called, indexed, measured, iterated and asked for attributes; every answer
comes back through `wire` as plain data (a copy) or as another StudentObject. It deliberately does NOT
forward comparisons, truth tests or arithmetic: those would let student code decide a test's outcome
(`__eq__` that always says True). Tests compare the *data* that came back, judge-side.
"""

from __future__ import annotations

import time

from autograder.grading.student_process import StudentProcess, StudentTimeout, student_error
from autograder.sandbox.inside import wire


class StudentObject:
    __slots__ = ("_link", "_id", "_type")

    def __init__(self, link: StudentLink, tree: dict):
        self._link = link
        self._id = tree.get("id")
        self._type = str(tree.get("type", "object"))[:100]

    def __del__(self) -> None:
        """The judge no longer holds this object: the student process may drop it (with the next request)."""
        link = getattr(self, "_link", None)
        if link is not None:
            link.unused_handles.append(self._id)

    def __repr__(self) -> str:
        return f"<student {self._type} object>"

    def __call__(self, *args, **kwargs):
        return self._link.ask({"op": "call", "ref": self._ref()}, (list(args), dict(kwargs)))

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._link.ask({"op": "getattr", "ref": self._ref(), "name": name})

    def __getitem__(self, key):
        return self._link.ask({"op": "getitem", "ref": self._ref()}, key=key)

    def __len__(self) -> int:
        value = self._link.ask({"op": "len", "ref": self._ref()})
        if type(value) is not int:
            raise TypeError(f"len() of {self!r} did not return an integer")
        return value

    def __iter__(self):
        iterator = self._link.ask({"op": "iter", "ref": self._ref()})
        if not isinstance(iterator, StudentObject):
            yield from iterator
            return
        while True:
            try:
                yield self._link.ask({"op": "next", "ref": iterator._ref()})
            except StopIteration:
                return

    def __array__(self, dtype=None, copy=None):
        import numpy as np

        value = self._link.ask({"op": "to_array", "ref": self._ref()})
        if not isinstance(value, (np.ndarray, np.generic)):
            raise TypeError(f"{self!r} could not be turned into a numeric array")
        return np.asarray(value, dtype=dtype)

    def __bool__(self) -> bool:
        raise TypeError(
            f"{self!r} came from student code and is not plain data, so it cannot decide a test; "
            "compare data it returns instead"
        )

    def _ref(self) -> dict:
        return {"k": "handle", "id": self._id}


class StudentLink:
    """Requests to the student process for one test cell's time budget."""

    def __init__(self, process: StudentProcess):
        self.process = process
        self.deadline = time.monotonic() + 60.0
        self.budget = 60.0
        self.unused_handles: list = []  # ids of StudentObjects the judge dropped, sent with the next request

    def set_budget(self, seconds: float) -> None:
        self.budget = seconds
        self.deadline = time.monotonic() + seconds

    def _encode_outgoing(self, value):
        def refuse(obj):
            if isinstance(obj, StudentObject):
                return obj._ref()
            raise TypeError(f"cannot pass a judge-side {type(obj).__name__} to student code")

        return wire.encode(value, refuse)

    def ask(self, header: dict, call_args=None, key=None):
        header = dict(header)
        if self.unused_handles:
            header["release"], self.unused_handles[:] = list(self.unused_handles), []
        buffers: list[bytes] = []
        if call_args is not None:
            (args_tree, kwargs_tree), buffers = self._encode_pair(call_args)
            header["args"], header["kwargs"] = args_tree, kwargs_tree
        if key is not None:
            header["key"], buffers = self._encode_outgoing(key)
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise StudentTimeout(f"stopped: the test's time limit of {self.budget:g} s was used up")
        answer, answer_buffers = self.process.request(header, buffers, timeout=remaining)
        if not answer.get("ok"):
            error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
            if error.get("type") == "StopIteration":
                raise StopIteration
            raise student_error(error)
        return wire.decode(answer.get("value"), answer_buffers, lambda tree: StudentObject(self, tree))

    def _encode_pair(self, call_args):
        args, kwargs = call_args
        tree, buffers = self._encode_outgoing([args, kwargs])
        args_tree, kwargs_tree = tree["items"]
        return (args_tree, kwargs_tree), buffers

    def set_global(self, name: str, value) -> None:
        """Bind the student's global `name` to `value` (a StudentObject or plain data; a judge-side object
        raises TypeError) until restore_globals."""
        self.ask({"op": "set_global", "name": name}, key=[value])

    def delete_global(self, name: str) -> None:
        """Remove the student's global `name` until restore_globals."""
        self.ask({"op": "delete_global", "name": name})

    def restore_globals(self) -> None:
        """Every global changed by set_global or delete_global back to what the student's code left."""
        self.ask({"op": "restore_globals"})

    def bind(self, names: list[str]) -> tuple[dict[str, str], dict]:
        """Which of `names` the student defined, in one request: (modules: name -> module name, values:
        name -> data or StudentObject). Whatever else the student process answers is ignored."""
        answer = self.ask({"op": "bind", "names": names})
        if not isinstance(answer, dict):
            return {}, {}
        wanted = set(names)
        modules = answer.get("modules") if isinstance(answer.get("modules"), dict) else {}
        values = answer.get("values") if isinstance(answer.get("values"), dict) else {}
        modules = {name: str(module) for name, module in modules.items() if name in wanted}
        values = {name: value for name, value in values.items() if name in wanted and name not in modules}
        return modules, values

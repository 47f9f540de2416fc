"""The student process: runs the student's cells and answers the judge's requests. UNTRUSTED side.

It starts inside the sandbox with two inherited pipes (requests in, answers out), never sees tests,
expected values, solutions or the gradebook, and only ever sends data through `wire`. Student code runs
in this same process, so nothing here is relied upon by the judge: a student can rewrite all of it, and
the worst they achieve is answering with values of their choosing, which is what their functions do
anyway.

Run as: python student_runner.py REQUEST_FD ANSWER_FD   (the sandbox copies this file next to wire.py)
"""

from __future__ import annotations

import ast
import io
import signal
import sys
import traceback
import types

import wire

OUTPUT_LIMIT = 64 * 1024


def student_traceback(error: BaseException) -> str:
    """The traceback as the student should read it: their frames only, not this runner's."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename != __file__]
    lines = traceback.format_list(frames) + traceback.format_exception_only(type(error), error)
    return "Traceback (most recent call last):\n" + "".join(lines) if frames else "".join(lines)


class CappedText(io.TextIOBase):
    """A stdout/stderr stand-in that keeps the first OUTPUT_LIMIT characters of a cell's output."""

    def __init__(self):
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, text) -> int:
        text = str(text)
        room = OUTPUT_LIMIT - self.size
        if room > 0:
            self.parts.append(text[:room])
            self.size += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def getvalue(self) -> str:
        text = "".join(self.parts)
        if self.dropped:
            text += f"\n... [{self.dropped} more characters of output not shown]\n"
        return text


UNSET = object()


class Runner:
    def __init__(self, request_fd: int, answer_fd: int):
        self.request_fd = request_fd
        self.answer_fd = answer_fd
        self.namespace: dict = {"__name__": "__main__", "__builtins__": __builtins__}
        self.handles: dict[int, object] = {}
        self.next_handle = 1
        self.cell_count = 0
        self.transformer = None
        self.patched: dict[str, object] = {}  # a global a test changed -> the student's own value (or UNSET)

    # --- handles ----------------------------------------------------------------------------------------

    def make_handle(self, value) -> dict:
        handle = self.next_handle
        self.next_handle += 1
        self.handles[handle] = value
        return {"k": "handle", "id": handle, "type": type(value).__name__[:100], "callable": callable(value)}

    def resolve(self, tree: dict):
        if tree.get("k") != "handle" or tree.get("id") not in self.handles:
            raise wire.WireError("unknown handle")
        return self.handles[tree["id"]]

    def decode(self, tree, buffers):
        return wire.decode(tree, buffers, self.resolve)

    def send_error(self, error: BaseException) -> None:
        text = student_traceback(error)
        header = {
            "ok": False,
            "error": {
                "type": type(error).__name__[:100],
                "message": str(error)[:2000],
                "traceback": text[-8000:],
            },
        }
        wire.write_frame(self.answer_fd, header, [])

    # --- cells ------------------------------------------------------------------------------------------

    def transform(self, code: str) -> str:
        """IPython syntax (%magics, !shell) becomes plain Python calling get_ipython(), as in Jupyter."""
        if "%" not in code and "!" not in code:
            return code
        if self.transformer is None:
            from IPython.core.inputtransformer2 import TransformerManager
            from IPython.core.interactiveshell import InteractiveShell

            self.transformer = TransformerManager()
            shell = InteractiveShell.instance(user_ns=self.namespace)
            self.namespace["get_ipython"] = lambda: shell
        return self.transformer.transform_cell(code)

    def run_cell(self, code: str, label: str) -> dict:
        self.cell_count += 1
        name = f"<{label or f'cell {self.cell_count}'}>"
        out, err = CappedText(), CappedText()
        result: dict = {"stdout": "", "stderr": "", "result": None, "error": None}
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err
        try:
            tree = ast.parse(self.transform(code), filename=name)
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            exec(compile(tree, name, "exec"), self.namespace)
            if last is not None:
                value = eval(compile(ast.Expression(last.value), name, "eval"), self.namespace)
                if value is not None:
                    result["result"] = repr(value)[:OUTPUT_LIMIT]
        except BaseException as error:  # noqa: BLE001 -- SystemExit and KeyboardInterrupt are cell errors too
            result["error"] = {
                "type": type(error).__name__[:100],
                "message": str(error)[:2000],
                "traceback": student_traceback(error)[-8000:],
            }
        finally:
            sys.stdout, sys.stderr = saved
        result["stdout"], result["stderr"] = out.getvalue(), err.getvalue()
        return result

    def bind(self, wanted: list[str]) -> dict:
        """Which of the `wanted` global names the student defined, in one answer: modules by name (the
        judge binds its own copy of a module), everything else as its value (data, or a handle)."""
        modules, values = {}, {}
        for name in wanted:
            if name.startswith("__") or name in ("get_ipython", "In", "Out", "exit", "quit"):
                continue
            if name not in self.namespace:
                continue
            value = self.namespace[name]
            if isinstance(value, types.ModuleType):
                modules[name] = str(getattr(value, "__name__", ""))
            else:
                values[name] = value
        return {"modules": modules, "values": values}

    # --- requests ---------------------------------------------------------------------------------------

    def handle(self, request: dict, buffers: list[bytes]):
        for handle in request.get("release", ()):  # objects the judge holds no more
            self.handles.pop(handle, None)
        op = request.get("op")
        if op == "run_cell":
            return self.run_cell(str(request["code"]), str(request.get("label", ""))[:100])
        if op == "bind":
            return self.bind([str(name) for name in request.get("names", [])][:10_000])
        if op in ("set_global", "delete_global"):
            name = str(request["name"])
            self.patched.setdefault(name, self.namespace.get(name, UNSET))
            if op == "set_global":
                self.namespace[name] = self.decode(request["key"], buffers)[0]
            else:
                self.namespace.pop(name, None)
            return None
        if op == "restore_globals":
            for name, value in self.patched.items():
                if value is UNSET:
                    self.namespace.pop(name, None)
                else:
                    self.namespace[name] = value
            self.patched.clear()
            return None
        target = self.decode(request.get("ref"), buffers) if "ref" in request else None
        if op == "getattr":
            return getattr(target, str(request["name"]))
        if op == "getitem":
            return target[self.decode(request["key"], buffers)]
        if op == "call":
            args = self.decode(request["args"], buffers)
            kwargs = self.decode(request["kwargs"], buffers)
            return target(*args, **kwargs)
        if op == "len":
            return len(target)
        if op == "iter":
            return iter(target)
        if op == "next":
            return next(target)
        if op == "to_array":
            import numpy

            return numpy.asarray(target)
        raise wire.WireError(f"unknown request {op!r}")

    def serve(self) -> None:
        while True:
            try:
                request, buffers = wire.read_frame(self.request_fd)
            except KeyboardInterrupt:
                continue  # an interrupt that arrived between cells: nothing to stop
            except EOFError:
                return
            try:
                value = self.handle(request, buffers)
                tree, answer_buffers = wire.encode(value, self.make_handle)  # may raise: then an error answer
            except BaseException as error:  # noqa: BLE001
                self.send_error(error)
                continue
            wire.write_frame(self.answer_fd, {"ok": True, "value": tree}, answer_buffers)


def preload(modules: list[str]) -> None:
    """Import what the notebooks import before the first request: a cold start then overlaps these
    imports with the judge's own (a warm template does the same once per worker)."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 -- a module that fails here fails again, visibly, in the student's cell
            pass


def main() -> None:
    request_fd, answer_fd = int(sys.argv[1]), int(sys.argv[2])
    preload([name for name in sys.argv[3].split(",") if name] if len(sys.argv) > 3 else [])
    signal.signal(signal.SIGINT, signal.default_int_handler)  # the judge interrupts a long cell with SIGINT
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over the file-size limit: an OSError, not a dead process
    sys.argv = ["student"]
    sys.stdin = io.StringIO("")
    Runner(request_fd, answer_fd).serve()


if __name__ == "__main__":
    main()

"""Benchmark: `course similarity a1_backprop` on 300 generated submissions; planted copies must rank first.

    .venv/bin/python bench/similarity_300.py [--students 300] [--seed 0] [--keep DIR]

Builds a course in a temporary folder (this repository's nbgrader_config.py and release/a1_backprop/) and
submits, for each student, the released notebook with its solution cells filled from
solutions/a1_backprop/, varied per student: each function from one of several implementations (the
posted solution's or another, loops or vectorised), with the student's habits for equivalent
expressions (x @ w, x.dot(w), np.dot(x, w); x.sum(axis=0), np.sum(x, axis=0); t**2, t * t,
np.square(t)...), some seeded bugs from mutants.toml, renamed variables, reordered functions, their own
comments, docstrings and spacing, debugging prints, cells left blank, and a training cell with their own
hyperparameters and loop. Among them, copies with disguises (renamed variables, reordered functions,
new comments, re-indented, some expressions swapped): a light and a heavy copy, a partial copy (half
the cells) and a source copied twice (three pairs). Runs the command as an instructor would, prints
its wall time, the ranks of the planted pairs and the scores of the honest pairs; exits 1 unless the
planted pairs hold the top ranks and the command took under a minute.
"""

from __future__ import annotations

import argparse
import ast
import csv
import io
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tokenize
import tomllib
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autograder.course import REPO_ROOT  # noqa: E402
from autograder.notebook import cells  # noqa: E402

ASSIGNMENT = "a1_backprop"
NOTEBOOK = "a1_backprop.ipynb"
TIME_LIMIT_S = 60.0
PARTIAL = "half the cells"  # a partial copy shows in fewer cells: it must rank in the top PARTIAL_SHARE of pairs
PARTIAL_SHARE = 0.01
HEAVY_RATE = 0.25  # a heavy disguise reorders this share of independent statements and rewrites this share of
# equivalent expressions the copier's way

# Other ways to write each function's body (the posted solution's own body is always the first way).
VARIANTS = {
    "affine_forward": [
        "N = x.shape[0]\nout = x.reshape(N, -1) @ w + b\ncache = (x, w, b)\nreturn out, cache",
        "out = np.dot(x, w) + b[None, :]\ncache = x, w\nreturn out, cache",
        "cache = (x, w, b)\nout = x.dot(w)\nout += b\nreturn out, cache",
    ],
    "affine_backward": [
        "x, w = cache[0], cache[1]\nN = x.shape[0]\ndx = (dout @ w.T).reshape(x.shape)\n"
        "dw = x.reshape(N, -1).T @ dout\ndb = np.sum(dout, axis=0)\nreturn dx, dw, db",
        "x = cache[0]\nw = cache[1]\ndb = dout.sum(0)\ndw = np.dot(x.T, dout)\ndx = np.dot(dout, w.T)\n"
        "return dx, dw, db",
        "x, w = cache[:2]\ndx = np.zeros_like(x)\ndw = np.zeros_like(w)\ndb = np.zeros(w.shape[1])\n"
        "for n in range(x.shape[0]):\n    dx[n] = w @ dout[n]\n    dw += np.outer(x[n], dout[n])\n    db += dout[n]\n"
        "return dx, dw, db",
    ],
    "relu_forward": [
        "out = x * (x > 0)\ncache = x\nreturn out, cache",
        "mask = x > 0\nout = np.where(mask, x, 0.0)\ncache = mask\nreturn out, cache",
        "out = x.copy()\nout[out < 0] = 0\ncache = x\nreturn out, cache",
    ],
    "relu_backward": [
        "dx = dout.copy()\ndx[cache <= 0] = 0\nreturn dx",
        "mask = cache > 0\ndx = np.where(mask, dout, 0.0)\nreturn dx",
        "x = cache\ndx = np.array(dout, copy=True)\ndx[x <= 0] = 0.0\nreturn dx",
    ],
    "sigmoid_forward": [
        "out = np.exp(x) / (1 + np.exp(x))\ncache = out\nreturn out, cache",
        "out = np.where(x >= 0, 1 / (1 + np.exp(-x)), np.exp(x) / (1 + np.exp(x)))\ncache = out\nreturn out, cache",
        "s = 1 / (1 + np.exp(-x))\nout, cache = s, s\nreturn out, cache",
    ],
    "sigmoid_backward": [
        "dx = dout * cache * (1.0 - cache)\nreturn dx",
        "sig = cache\nlocal_grad = sig * (1 - sig)\ndx = local_grad * dout\nreturn dx",
    ],
    "tanh_forward": [
        "e2 = np.exp(2 * x)\nout = (e2 - 1) / (e2 + 1)\ncache = out\nreturn out, cache",
        "out = 2 / (1 + np.exp(-2 * x)) - 1\ncache = out\nreturn out, cache",
    ],
    "tanh_backward": [
        "dx = dout * (1 - np.square(cache))\nreturn dx",
        "dx = (1.0 - cache * cache) * dout\nreturn dx",
    ],
    "softmax_loss": [
        "N = len(y)\nexp_scores = np.exp(scores - np.max(scores, axis=1, keepdims=True))\n"
        "probs = exp_scores / np.sum(exp_scores, axis=1, keepdims=True)\n"
        "loss = -np.sum(np.log(probs[np.arange(N), y])) / N\ndscores = probs.copy()\n"
        "dscores[np.arange(N), y] -= 1\ndscores /= N\nreturn loss, dscores",
        "N, C = scores.shape\nonehot = np.zeros((N, C))\nonehot[np.arange(N), y] = 1\n"
        "z = scores - scores.max(axis=1)[:, None]\np = np.exp(z)\np = p / p.sum(axis=1)[:, None]\n"
        "loss = -(onehot * np.log(p)).sum() / N\ndscores = (p - onehot) / N\nreturn loss, dscores",
        "N = scores.shape[0]\nloss = 0.0\ndscores = np.zeros_like(scores)\nfor i in range(N):\n"
        "    s = scores[i] - np.max(scores[i])\n    p = np.exp(s) / np.sum(np.exp(s))\n"
        "    loss += -np.log(p[y[i]])\n    p[y[i]] -= 1\n    dscores[i] = p\nloss /= N\ndscores /= N\n"
        "return loss, dscores",
    ],
    "svm_loss": [
        "N = scores.shape[0]\ncorrect = scores[range(N), y].reshape(-1, 1)\n"
        "margins = np.maximum(0, scores - correct + 1)\nmargins[range(N), y] = 0\nloss = np.sum(margins) / N\n"
        "mask = (margins > 0).astype(float)\nmask[range(N), y] = -np.sum(mask, axis=1)\ndscores = mask / N\n"
        "return loss, dscores",
        "N, C = scores.shape\nloss = 0.0\ndscores = np.zeros(scores.shape)\nfor i in range(N):\n"
        "    for j in range(C):\n        if j == y[i]:\n            continue\n"
        "        margin = scores[i, j] - scores[i, y[i]] + 1\n        if margin > 0:\n            loss += margin\n"
        "            dscores[i, j] += 1\n            dscores[i, y[i]] -= 1\nreturn loss / N, dscores / N",
    ],
    "xavier_init": [
        "rng = np.random.default_rng(seed)\n"
        "W = rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), size=(fan_in, fan_out))\n"
        "return W",
        "rng = np.random.default_rng(seed)\nscale = np.sqrt(2 / (fan_in + fan_out))\n"
        "W = rng.standard_normal(size=(fan_in, fan_out)) * scale\nreturn W",
    ],
    "he_init": [
        "rng = np.random.default_rng(seed)\nW = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out))\n"
        "return W",
        "rng = np.random.default_rng(seed)\nscale = np.sqrt(2 / fan_in)\n"
        "W = rng.standard_normal(size=(fan_in, fan_out)) * scale\nreturn W",
    ],
    "two_layer_loss": [
        "N = X.shape[0]\nz1 = X @ W1 + b1\na1 = np.maximum(0, z1)\nscores = a1 @ W2 + b2\n"
        "loss, dscores = softmax_loss(scores, y)\nloss += 0.5 * reg * (np.sum(W1 * W1) + np.sum(W2 * W2))\n"
        "grads = {}\ngrads[\"W2\"] = a1.T @ dscores + reg * W2\ngrads[\"b2\"] = dscores.sum(axis=0)\n"
        "da1 = dscores @ W2.T\ndz1 = da1 * (z1 > 0)\ngrads[\"W1\"] = X.T @ dz1 + reg * W1\n"
        "grads[\"b1\"] = dz1.sum(axis=0)\nreturn loss, grads",
        "hidden, cache_a = affine_forward(X, W1, b1)\nhidden_relu, cache_r = relu_forward(hidden)\n"
        "scores, cache_b = affine_forward(hidden_relu, W2, b2)\nloss, dscores = softmax_loss(scores, y)\n"
        "for W in (W1, W2):\n    loss += 0.5 * reg * np.sum(W ** 2)\n"
        "dhidden_relu, dW2, db2 = affine_backward(dscores, cache_b)\ndhidden = relu_backward(dhidden_relu, cache_r)\n"
        "dX, dW1, db1 = affine_backward(dhidden, cache_a)\ndW1 += reg * W1\ndW2 += reg * W2\n"
        "grads = dict(W1=dW1, b1=db1, W2=dW2, b2=db2)\nreturn loss, grads",
    ],
    "sgd": [
        "lr = config[\"learning_rate\"]\nnext_w = w - lr * dw\nreturn next_w, config",
        "next_w = w.copy()\nnext_w -= config.get(\"learning_rate\", 1e-2) * dw\nreturn next_w, config",
    ],
    "sgd_momentum": [
        "config.setdefault(\"velocity\", np.zeros_like(w))\n"
        "v = config[\"momentum\"] * config[\"velocity\"] - config[\"learning_rate\"] * dw\nnext_w = w + v\n"
        "config[\"velocity\"] = v\nreturn next_w, config",
        "mu, lr = config[\"momentum\"], config[\"learning_rate\"]\nv = config.get(\"velocity\")\nif v is None:\n"
        "    v = np.zeros(w.shape)\nv = mu * v - lr * dw\nconfig[\"velocity\"] = v\nreturn w + v, config",
    ],
    "rmsprop": [
        "config.setdefault(\"cache\", np.zeros_like(w))\n"
        "config[\"cache\"] = config[\"decay_rate\"] * config[\"cache\"] + (1 - config[\"decay_rate\"]) * dw * dw\n"
        "next_w = w - config[\"learning_rate\"] * dw / (np.sqrt(config[\"cache\"]) + config[\"epsilon\"])\n"
        "return next_w, config",
        "decay, lr, eps = config[\"decay_rate\"], config[\"learning_rate\"], config[\"epsilon\"]\n"
        "g2 = config.get(\"cache\", np.zeros(w.shape))\ng2 = decay * g2 + (1.0 - decay) * np.square(dw)\n"
        "next_w = w - lr * dw / (np.sqrt(g2) + eps)\nconfig[\"cache\"] = g2\nreturn next_w, config",
    ],
    "adam": [
        "lr, b1, b2, eps = config[\"learning_rate\"], config[\"beta1\"], config[\"beta2\"], config[\"epsilon\"]\n"
        "m = config.get(\"m\", np.zeros_like(w))\nv = config.get(\"v\", np.zeros_like(w))\n"
        "t = config.get(\"t\", 0) + 1\n"
        "m = b1 * m + (1 - b1) * dw\nv = b2 * v + (1 - b2) * (dw * dw)\n"
        "mt = m / (1 - b1 ** t)\nvt = v / (1 - b2 ** t)\n"
        "next_w = w - lr * mt / (np.sqrt(vt) + eps)\nconfig[\"m\"], config[\"v\"], config[\"t\"] = m, v, t\n"
        "return next_w, config",
        "config.setdefault(\"m\", np.zeros_like(w))\nconfig.setdefault(\"v\", np.zeros_like(w))\n"
        "config[\"t\"] = config.get(\"t\", 0) + 1\n"
        "config[\"m\"] = config[\"beta1\"] * config[\"m\"] + (1 - config[\"beta1\"]) * dw\n"
        "config[\"v\"] = config[\"beta2\"] * config[\"v\"] + (1 - config[\"beta2\"]) * dw**2\n"
        "m_hat = config[\"m\"] / (1 - config[\"beta1\"] ** config[\"t\"])\n"
        "v_hat = config[\"v\"] / (1 - config[\"beta2\"] ** config[\"t\"])\n"
        "next_w = w - config[\"learning_rate\"] * m_hat / (np.sqrt(v_hat) + config[\"epsilon\"])\n"
        "return next_w, config",
    ],
}

# Other names students give the same things (renamed consistently within a function).
NAMES = {
    "out": ["result", "output", "res", "y_out"], "cache": ["saved", "memo", "cached"], "dx": ["grad_x", "dX", "d_x"],
    "dw": ["grad_w", "dW", "d_w"], "db": ["grad_b", "dB", "d_b"], "N": ["n", "batch", "num"], "x": ["inp", "X_in"],
    "dout": ["upstream", "grad_out", "g"], "probs": ["p", "prob", "P"], "loss": ["L", "total_loss", "cost"],
    "mask": ["active", "pos", "m_"], "s": ["sig", "sv"], "t": ["th", "step"], "shifted": ["z", "stable"],
    "log_probs": ["logp", "lp"], "margins": ["marg", "hinge"], "correct": ["true_scores", "cs"],
    "v": ["vel", "velocity"],
    "m": ["first", "mom"], "next_w": ["w_new", "new_w", "updated"], "rng": ["gen", "random_state", "r"],
    "std": ["sigma", "scale_"], "W": ["weights", "Wmat"], "h": ["hid", "a1"], "z": ["pre", "zz"], "scores": ["logits"],
    "dscores": ["dlogits", "grad_scores"], "exp_scores": ["e", "exps"], "onehot": ["Y", "one_hot"],
}
COMMENTS = ["# forward pass", "# backward pass", "# chain rule", "# vectorised", "# shape check", "# see lecture 4",
            "# TODO clean up", "# from the notes", "# broadcasting", "# numerically stable", "# per-sample",
            "# gradient", "# update rule", "# careful with shapes here", "# this took me a while", "# works"]


def rename(code: str, mapping: dict[str, str]) -> str:
    """Rename NAME tokens (not attributes, not keyword arguments) by `mapping`."""
    lines = io.StringIO(code).readlines()
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    edits, depth = [], 0
    for i, tok in enumerate(tokens):
        if tok.string in "([{" and tok.type == tokenize.OP:
            depth += 1
        elif tok.string in ")]}" and tok.type == tokenize.OP:
            depth -= 1
        if tok.type != tokenize.NAME or tok.string not in mapping:
            continue
        if i and tokens[i - 1].string == ".":
            continue
        if depth and i + 1 < len(tokens) and tokens[i + 1].string == "=":
            continue
        start = starts[tok.start[0] - 1] + tok.start[1]
        edits.append((start, start + len(tok.string), mapping[tok.string]))
    for start, end, new in reversed(edits):
        code = code[:start] + new + code[end:]
    return code


def bound_names(code: str) -> set[str]:
    """Names assigned and parameters in `code` (what a student may rename)."""
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg) and node.arg not in ("seed", "reg", "config"):
            names.add(node.arg)
    return names


# Equivalent expressions: (pattern, ways to write a match).
SWAPS = {
    "matmul": (re.compile(r"\b([A-Za-z_]\w*(?:\.T)?) @ ([A-Za-z_]\w*(?:\.T)?)\b(?!\()"),
               [lambda m: f"{m[1]} @ {m[2]}", lambda m: f"{m[1]}.dot({m[2]})", lambda m: f"np.dot({m[1]}, {m[2]})"]),
    "reduce": (re.compile(r"\b([A-Za-z_]\w*)\.(sum|max|mean)\((axis=\d(?:, keepdims=True)?)\)"),
               [lambda m: m[0], lambda m: f"np.{m[2]}({m[1]}, {m[3]})"]),
    "square": (re.compile(r"\b([A-Za-z_]\w*) ?\*\* ?2\b"),
               [lambda m: f"{m[1]}**2", lambda m: f"{m[1]} * {m[1]}", lambda m: f"np.square({m[1]})"]),
    "zeros": (re.compile(r"np\.zeros_like\(([A-Za-z_]\w*)\)"), [lambda m: m[0], lambda m: f"np.zeros({m[1]}.shape)"]),
    "get": (re.compile(r"config\[(\"\w+\")\](?!\s*=[^=])"), [lambda m: m[0], lambda m: f"config.get({m[1]})"]),
}


def swap(code: str, rng: random.Random, habits: dict[str, int], rate: float) -> str:
    """Write each equivalent expression the student's way (`habits`), a share `rate` of the time."""
    for kind, (pattern, ways) in SWAPS.items():
        code = pattern.sub(lambda m, w=ways, k=kind: w[habits[k]](m) if rng.random() < rate else m[0], code)
    return code


def _names(node: ast.AST) -> tuple[set[str], set[str]]:
    """(names a statement assigns, names it reads)."""
    stored, read = set(), set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            (stored if isinstance(sub.ctx, ast.Store) else read).add(sub.id)
    if isinstance(node, ast.AugAssign):
        read |= stored
    return stored, read


def reorder_statements(body: str, rng: random.Random, rate: float) -> str:
    """Swap adjacent one-line statements that do not depend on each other (a share `rate` of the time)."""
    lines = body.split("\n")
    try:
        tree = ast.parse(body)
    except SyntaxError:
        return body
    blocks = [node.body for node in ast.walk(tree) if isinstance(getattr(node, "body", None), list)]
    moved = set()
    for first, second in ((a, b) for block in blocks for a, b in zip(block, block[1:], strict=False)):
        one_line = all(n.lineno == n.end_lineno and isinstance(n, ast.Assign | ast.AugAssign) for n in (first, second))
        if not one_line or id(first) in moved or rng.random() >= rate:
            continue
        (stored1, read1), (stored2, read2) = _names(first), _names(second)
        if not (stored1 & (read2 | stored2) or stored2 & read1):
            a, b = first.lineno - 1, second.lineno - 1
            lines[a], lines[b] = lines[b], lines[a]
            moved |= {id(first), id(second)}
    return "\n".join(lines)


def habits_of_style(body: str, rng: random.Random, student: Student) -> str:
    """Small habits: `return (a, b)`, `x = x / n` for `x /= n`, a shape check at the top."""
    if student.return_parens:
        body = re.sub(r"^return (\w+(?:, \w+)+)$", r"return (\1)", body, flags=re.M)
    if student.no_augmented:
        body = re.sub(r"^(\s*)(\w+) ([-+*/])= (\w+)$", r"\1\2 = \2 \3 \4", body, flags=re.M)
    return body


def strip_comments(code: str) -> str:
    return "\n".join(re.sub(r"\s+#.*$|^\s*#.*$", "", line) for line in code.split("\n"))


def add_comments(code: str, rng: random.Random, rate: float) -> str:
    lines = []
    for line in code.split("\n"):
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", "def ", '"""')) and rng.random() < rate:
            line = f"{line}  {rng.choice(COMMENTS)}" if rng.random() < 0.6 else (
                line[: len(line) - len(line.lstrip())] + rng.choice(COMMENTS) + "\n" + line)
        lines.append(line)
    return "\n".join(lines)


def respace(code: str, rng: random.Random, indent: int) -> str:
    """Blank lines, spacing around '=' and the indent width: what an editor or a habit changes."""
    out, lines = [], code.split("\n")
    unit = min((len(line) - len(line.lstrip(" ")) for line in lines if line.startswith(" ")), default=4)
    for line in lines:
        depth = (len(line) - len(line.lstrip(" "))) // unit
        line = " " * (indent * depth) + line.lstrip(" ")
        if rng.random() < 0.1 and " = " in line and "==" not in line:
            line = line.replace(" = ", "=", 1)
        out.append(line)
        if line.strip() and rng.random() < 0.05:
            out.append("")
    return "\n".join(out)


class Solution:
    """The posted solution's cells: per function its def line, docstring and body (without comments)."""

    def __init__(self) -> None:
        posted = nbformat.read(REPO_ROOT / "solutions" / ASSIGNMENT / NOTEBOOK, as_version=4)
        self.cells: dict[str, str] = {}
        for cell in posted.cells:
            if cells.role(cell) == "solution" and cell.cell_type == "code":
                self.cells[cells.grade_id(cell)] = cell.source
        self.functions: dict[str, list[tuple[str, str, str, str]]] = {}  # cell -> [(name, head, doc, body)]
        for gid, source in self.cells.items():
            lines = source.split("\n")
            for node in ast.parse(source).body:
                if isinstance(node, ast.FunctionDef):
                    doc_end = node.body[0].end_lineno
                    head, doc = lines[node.lineno - 1], "\n".join(lines[node.lineno : doc_end])
                    body = "\n".join(line[4:] for line in lines[doc_end : node.end_lineno])
                    self.functions.setdefault(gid, []).append((node.name, head, doc, body))
        toml = tomllib.loads((REPO_ROOT / "source" / ASSIGNMENT / "mutants.toml").read_text())
        self.bugs = [m for m in toml["mutant"] if m.get("cell") in self.functions and "replace" in m]


def train_cell(rng: random.Random) -> str:
    """The free-form training cell, written the student's way."""
    optimizer = rng.choice(["adam", "adam", "sgd_momentum", "rmsprop", "sgd"])
    lr = {"adam": [1e-3, 2e-3, 5e-3, 1e-2], "rmsprop": [1e-3, 5e-4, 2e-3], "sgd_momentum": [0.05, 0.1, 0.02],
          "sgd": [0.1, 0.2, 0.5]}[optimizer]  # fmt: skip
    names = rng.choice([("params", "configs"), ("net", "opt_state"), ("weights", "state"), ("model", "cfg")])
    hidden, reg = rng.choice([64, 100, 128, 150, 200, 256]), rng.choice([0.0, 1e-5, 1e-4, 5e-4, 1e-3])
    batch, epochs = rng.choice([32, 50, 64, 100, 128, 200]), rng.randint(4, 15)
    extra = {"adam": '"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8', "rmsprop": '"decay_rate": 0.99, "epsilon": 1e-8',
             "sgd_momentum": '"momentum": 0.9', "sgd": ""}[optimizer]  # fmt: skip
    p, c = names
    init1, init2 = rng.choice(["he_init", "xavier_init"]), rng.choice(["he_init", "xavier_init"])
    lines = [
        f"hidden_size = {hidden}", f"reg = {reg}", f"batch_size = {batch}", f"epochs = {epochs}",
        f"{p} = {{", f'    "W1": {init1}(64, hidden_size, seed={rng.randint(0, 9)}),',
        '    "b1": np.zeros(hidden_size),',
        f'    "W2": {init2}(hidden_size, 10, seed={rng.randint(0, 9)}),', '    "b2": np.zeros(10),', "}",
        f'{c} = {{k: {{"learning_rate": {rng.choice(lr)}{", " + extra if extra else ""}}} for k in {p}}}',
        'X_tr, y_tr = data["X_train"], data["y_train"]',
    ]  # fmt: skip
    loop = rng.randrange(3)
    if loop == 0:
        lines += ["rng = np.random.default_rng(0)", "for epoch in range(epochs):",
                  "    order = rng.permutation(len(X_tr))",
                  "    for start in range(0, len(X_tr), batch_size):", "        idx = order[start:start + batch_size]"]
    elif loop == 1:
        lines += ["for epoch in range(epochs):", "    idx_all = np.arange(X_tr.shape[0])",
                  "    np.random.shuffle(idx_all)",
                  "    for b in range(X_tr.shape[0] // batch_size):",
                  "        idx = idx_all[b * batch_size:(b + 1) * batch_size]"]
    else:
        lines += ["steps_per_epoch = max(1, len(X_tr) // batch_size)", "for epoch in range(epochs):",
                  "    for step in range(steps_per_epoch):", "        idx = np.random.choice(len(X_tr), batch_size)"]
    lines += [f"        loss, grads = two_layer_loss(X_tr[idx], y_tr[idx], {p}, reg)", f"        for k in {p}:",
              f"            {p}[k], {c}[k] = {optimizer}({p}[k], grads[k], {c}[k])"]
    if rng.random() < 0.5:
        lines = [f"def predict({p}, X):", f'    h = np.maximum(0, X @ {p}["W1"] + {p}["b1"])',
                 f'    return np.argmax(h @ {p}["W2"] + {p}["b2"], axis=1)', "", "", *lines,
                 f'    acc = np.mean(predict({p}, data["X_val"]) == data["y_val"])']
    else:
        lines += [f'    hid = np.maximum(0, data["X_val"] @ {p}["W1"] + {p}["b1"])',
                  f'    acc = (np.argmax(hid @ {p}["W2"] + {p}["b2"], axis=1) == data["y_val"]).mean()']
    lines.append(rng.choice(['    print(f"epoch {epoch}: loss {loss:.3f} val acc {acc:.3f}")',
                             '    print("epoch", epoch, "loss", loss, "val", acc)',
                             '    print(f"[{epoch + 1}/{epochs}] val accuracy = {acc:.2%}")']))
    lines.append(f"trained_params = {p}")
    return "\n".join(lines)


class Student:
    """One student's habits, and the solution cells they write with them."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.habits = {kind: rng.randrange(len(ways)) for kind, (_, ways) in SWAPS.items()}
        self.keep_comments = rng.random() < 0.4
        self.comment_rate = rng.choice([0.0, 0.05, 0.15, 0.3])
        self.keep_docstrings = rng.random() < 0.8
        self.indent = 2 if rng.random() < 0.1 else 4
        self.blank_rate = 0.5 if rng.random() < 0.05 else 0.05
        self.bug_rate = rng.choice([0.0, 0.05, 0.15])
        self.debug_rate = rng.choice([0.0, 0.1, 0.25])
        self.rename_rate = rng.choice([0.0, 0.2, 0.5])
        self.reorder_rate = rng.choice([0.0, 0.3, 0.6])
        self.return_parens = rng.random() < 0.2
        self.no_augmented = rng.random() < 0.3
        self.assert_rate = rng.choice([0.0, 0.0, 0.2, 0.5])

    def function(self, name: str, head: str, doc: str, body: str) -> str:
        rng = self.rng
        if not self.keep_comments:
            body = strip_comments(body)
        body = habits_of_style(reorder_statements(body, rng, self.reorder_rate), rng, self)
        first = head[head.index("(") + 1 :].split(",")[0].split(")")[0].strip()
        if rng.random() < self.assert_rate:
            check = rng.choice([f"assert {first}.ndim >= 1", f"assert {first} is not None",
                                f"assert len({first}.shape) > 0, {first}.shape",
                                f"assert np.all(np.isfinite({first}))"])
            body = check + "\n" + body
        if rng.random() < self.debug_rate:
            body = rng.choice([f"print({name!r}, {first}.shape)", f"# print({first})"]) + "\n" + body
        code = head + "\n" + (doc + "\n" if self.keep_docstrings else "") + "\n".join(
            "    " + line if line else line for line in body.split("\n"))
        renamed = [n for n in sorted(bound_names(code)) if n in NAMES and rng.random() < self.rename_rate]
        mapping = {n: rng.choice(NAMES[n]) for n in renamed}
        return rename(code, mapping)

    def cell(self, gid: str, solution: Solution, stub: str) -> str:
        rng = self.rng
        if rng.random() < self.blank_rate:
            return stub
        if gid == "train":
            return train_cell(rng)
        bugs = [b for b in solution.bugs if b["cell"] == gid] or [None]
        bug = rng.choice(bugs) if rng.random() < self.bug_rate else None
        parts = []
        for name, head, doc, body in solution.functions[gid]:
            if bug and bug["replace"] in body:
                body = body.replace(bug["replace"], bug["with"])
            elif rng.random() < 0.7:
                body = rng.choice(VARIANTS[name])
            parts.append(self.function(name, head, doc, body))
        if len(parts) > 1 and rng.random() < 0.15:
            parts.reverse()
        code = "\n\n\n".join(parts)
        code = swap(code, rng, self.habits, 0.8)
        return respace(add_comments(code, rng, self.comment_rate), rng, self.indent)


def top_level_chunks(code: str) -> list[str]:
    lines = code.split("\n")
    nodes = ast.parse(code).body
    return ["\n".join(lines[n.lineno - 1 : n.end_lineno]) for n in nodes]


def disguise(code: str, rng: random.Random, heavy: bool) -> str:
    """What a copier does to a cell to hide it: rename, new comments, spacing; heavy: reorder the functions,
    drop docstrings, swap some equivalent expressions and re-indent."""
    try:
        chunks = top_level_chunks(code)
    except SyntaxError:
        return code
    if heavy and len(chunks) > 1:
        chunks.reverse()
    code = "\n\n\n".join(chunks)
    mapping = {n: rng.choice(NAMES.get(n, [n + "_"])) + ("" if n in NAMES else "v") for n in sorted(bound_names(code))}
    code = rename(strip_comments(code), mapping)
    if heavy:
        code = re.sub(r'\n\s*""".*?"""', "", code, flags=re.S)
        code = reorder_statements(code, rng, HEAVY_RATE)
        habits = {kind: rng.randrange(len(ways)) for kind, (_, ways) in SWAPS.items()}
        code = swap(code, rng, habits, HEAVY_RATE)
    code = add_comments(code, rng, 0.3)
    return respace(code, rng, 2 if heavy else 4)


def build_course(root: Path, count: int, seed: int) -> list[tuple[str, str, str]]:
    """Write the course and its submissions; return the planted pairs (student, student, how)."""
    rng = random.Random(seed)
    root.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "nbgrader_config.py", root)
    shutil.copytree(REPO_ROOT / "release" / ASSIGNMENT, root / "release" / ASSIGNMENT)
    release = nbformat.read(root / "release" / ASSIGNMENT / NOTEBOOK, as_version=4)
    stubs = {cells.grade_id(c): c.source for c in release.cells
             if cells.role(c) == "solution" and c.cell_type == "code"}  # fmt: skip
    solution = Solution()
    ids = rng.sample(range(1000, 10000), count)
    students = [f"s{number}" for number in ids]
    written = {name: {gid: Student(random.Random(rng.random())).cell(gid, solution, stub)
                      for gid, stub in stubs.items()}
               for name in students}  # fmt: skip

    planted = []
    chosen = rng.sample(students, 9)
    (light_a, light_b, heavy_a, heavy_b, part_a, part_b, trio_a, trio_b, trio_c) = chosen
    for source, copier, heavy, share, how in [
        (light_a, light_b, False, 1.0, "light disguise"), (heavy_a, heavy_b, True, 1.0, "heavy disguise"),
        (part_a, part_b, True, 0.5, f"{PARTIAL}, heavy disguise"), (trio_a, trio_b, False, 1.0, "trio, light"),
        (trio_a, trio_c, True, 1.0, "trio, heavy"),
    ]:  # fmt: skip
        gids = [g for g in stubs if written[source][g] != stubs[g]]
        copied = set(rng.sample(gids, round(share * len(gids))))
        for gid in sorted(copied):
            written[copier][gid] = disguise(written[source][gid], rng, heavy)
        planted.append((source, copier, how))
    planted.append((trio_b, trio_c, "trio, the two copies"))
    (root / "planted.txt").write_text("".join(f"{a} {b} {how}\n" for a, b, how in planted))

    for name in students:
        nb = nbformat.read(root / "release" / ASSIGNMENT / NOTEBOOK, as_version=4)
        for cell in nb.cells:
            gid = cells.grade_id(cell)
            if gid in written[name]:
                cell.source = written[name][gid]
        folder = root / "submitted" / name / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / NOTEBOOK)
    return planted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="Build the course here and keep it (must not exist).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-similarity-") as tmp:
        root = args.keep or Path(tmp) / "course"
        planted = build_course(root, args.students, args.seed)
        command = [sys.executable, "-m", "autograder.cli", "similarity", ASSIGNMENT, "--course", str(root)]
        started, cpu_before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)
        seconds, cpu_after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
        print(done.stdout + done.stderr, end="")
        with (root / "reports" / ASSIGNMENT / "similarity.csv").open() as handle:
            rows = list(csv.DictReader(handle))
    rank = {frozenset((r["student_a"], r["student_b"])): (int(r["rank"]), float(r["score"])) for r in rows}
    print(f"\n{args.students} submissions: `course similarity` took {seconds:.1f} s wall, {cpu:.1f} s CPU "
          f"(limit {TIME_LIMIT_S:.0f} s)")
    print("planted pairs:")
    pairs_total = args.students * (args.students - 1) // 2
    partial_limit = int(PARTIAL_SHARE * pairs_total)
    ranks, whole_ranks, partial_ok = [], [], True
    for a, b, how in planted:
        found, score = rank.get(frozenset((a, b)), (None, 0.0))
        ranks.append(found)
        if how.startswith(PARTIAL):
            partial_ok = partial_ok and found is not None and found <= partial_limit
        else:
            whole_ranks.append(found)
        print(f"  {a} ~ {b} ({how}): rank {found}, score {score:.3f}")
    planted_keys = {frozenset((a, b)) for a, b, _ in planted}
    honest = [float(r["score"]) for r in rows if frozenset((r["student_a"], r["student_b"])) not in planted_keys]
    unlisted = pairs_total - len(rows)
    everything = sorted(honest + [0.0] * (unlisted - (len(planted) - sum(r is not None for r in ranks))))
    print(f"honest pairs: {len(everything)} ({unlisted} share nothing and are not listed); score max "
          f"{max(everything):.3f}, 99.9th percentile {everything[int(0.999 * len(everything))]:.3f}, "
          f"99th {everything[int(0.99 * len(everything))]:.3f}, median {statistics.median(everything):.3f}")
    print("top 10:", ", ".join(f"{r['student_a']}~{r['student_b']} {r['score']}" for r in rows[:10]))
    whole_on_top = sorted(r for r in whole_ranks if r) == list(range(1, len(whole_ranks) + 1))
    ok = whole_on_top and partial_ok and seconds < TIME_LIMIT_S
    print(f"OK: the whole-notebook copies hold ranks 1-{len(whole_ranks)}, the partial copy is in the top "
          f"{PARTIAL_SHARE:.0%} ({partial_limit} of {pairs_total} pairs)" if ok else "FAILED: see above")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()

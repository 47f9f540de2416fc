"""Fingerprints of Python code for the similarity report: normalised tokens, k-grams, winnowing.

Normalised so that what a copier changes cheaply changes nothing: comments, docstrings, blank lines and
spacing are dropped; every name the student chose (variables, parameters, their own functions) becomes
"V", while names everyone was given (builtins, imports, the functions the release defines or asks for),
attributes and keyword arguments stay as written; strings become "S" and numbers their value (1, 1. and
1.0 are one token). A k-gram is K consecutive tokens of one top-level function (or of a cell's other
code), so functions in another order have the same k-grams; winnowing (Schleimer, Wilkerson and Aiken,
SIGMOD 2003) keeps the smallest hash of every W consecutive k-grams, so two functions that share a run of
K + W - 1 tokens share a fingerprint. Hashes are stable from run to run (no PYTHONHASHSEED).
"""

from __future__ import annotations

import ast
import bisect
import builtins
import io
import keyword
import tokenize
import zlib
from collections.abc import Collection
from dataclasses import dataclass

K = 12  # tokens in a k-gram: about one statement and a half
W = 8  # k-grams in a winnowing window: a run of K + W - 1 = 19 equal tokens always shares a fingerprint
MASKED = 2**64  # above every hash: a k-gram winnowing must not keep (release code, common idioms)

BUILTINS = frozenset(dir(builtins))
_STRUCTURE = {tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
_SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER}
_STATEMENT_ENDS = {tokenize.NEWLINE, tokenize.ENDMARKER, tokenize.DEDENT}
_FSTRING_START = getattr(tokenize, "FSTRING_START", None)  # Python 3.12+ splits f-strings into parts
_FSTRING_END = getattr(tokenize, "FSTRING_END", None)


@dataclass(frozen=True)
class Token:
    text: str  # the normalised token
    start: int  # character offsets of what it stands for in the cell's source
    end: int


def given_names(code: str, defined: bool = True) -> set[str]:
    """Names that `code` gives everyone who runs it: what it imports and (with `defined`) the functions and
    classes it defines at top level. Read from the release, these are np, torch, affine_forward...;
    code that does not parse gives none."""
    if not defined and "import" not in code:
        return set()
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return set()
    names = {
        (alias.asname or alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    if defined:
        names.update(n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef))
    return names


def _tokens_until_error(text: str) -> list[tokenize.TokenInfo]:
    found = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            found.append(token)
    except (tokenize.TokenError, SyntaxError):
        pass
    return found


def _raw_tokens(code: str) -> list[tuple[tokenize.TokenInfo, int, int]]:
    """Python's tokens of `code` with their character offsets. A cell that does not tokenize as a whole
    (an unclosed bracket, a stray dedent) is read line by line, so its names and operators still count."""
    lines = io.StringIO(code).readlines()  # split as tokenize splits (at \n only)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(row: int, col: int, base_row: int = 0, shift: int = 0) -> int:
        return starts[min(base_row + row - 1, len(lines))] + col + shift

    whole = _tokens_until_error(code)
    if whole and whole[-1].type == tokenize.ENDMARKER:
        return [(t, offset(*t.start), offset(*t.end)) for t in whole]
    found = []
    for number, line in enumerate(lines):
        text = line.lstrip()
        shift = len(line) - len(text)
        for t in _tokens_until_error(text):
            if t.type not in (tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):  # one line: no structure
                start = offset(t.start[0], t.start[1], number, shift)
                found.append((t, start, offset(t.end[0], t.end[1], number, shift)))
    return found


def _number(text: str) -> str:
    try:
        value = ast.literal_eval(text)
        return repr(float(value)) if isinstance(value, int | float) else text
    except (ValueError, SyntaxError, OverflowError):
        return text


def normalised_tokens(code: str, keep: Collection[str] = ()) -> list[Token]:
    """The tokens of one cell, normalised (see the module's docstring); `keep`: names everyone was given."""
    raw = [(token, start, end) for token, start, end in _raw_tokens(code)
           if token.type in _STRUCTURE or (token.type not in _SKIPPED and token.string.strip())]  # fmt: skip
    tokens: list[Token] = []
    brackets: list[str] = []  # open brackets; "def" for the parameter list of a def
    fstring_depth, fstring_start = 0, 0
    for i, (token, start, end) in enumerate(raw):
        kind, text = token.type, token.string
        before = raw[i - 1][0] if i else None
        after = raw[i + 1][0] if i + 1 < len(raw) else None
        if kind == _FSTRING_START:
            fstring_depth, fstring_start = fstring_depth + 1, start if fstring_depth == 0 else fstring_start
            continue
        if kind == _FSTRING_END:
            fstring_depth -= 1
            if fstring_depth == 0:
                tokens.append(Token("S", fstring_start, end))
            continue
        if fstring_depth:
            continue
        if kind == tokenize.NEWLINE:
            if tokens and tokens[-1].text not in (";", "{", "}"):
                tokens.append(Token(";", start, start))
        elif kind == tokenize.INDENT:
            tokens.append(Token("{", end, end))
        elif kind == tokenize.DEDENT:
            tokens.append(Token("}", start, start))
        elif kind == tokenize.STRING:
            at_statement_start = not tokens or tokens[-1].text in (";", "{", "}")
            if not (at_statement_start and (after is None or after.type in _STATEMENT_ENDS)):  # not a docstring
                tokens.append(Token("S", start, end))
        elif kind == tokenize.NUMBER:
            tokens.append(Token(_number(text), start, end))
        elif kind == tokenize.NAME:
            attribute = before is not None and before.string == "."
            keyword_argument = (after is not None and after.string == "=" and brackets and brackets[-1] == "(")
            chosen = not (keyword.iskeyword(text) or text in BUILTINS or text in keep or attribute or keyword_argument)
            tokens.append(Token("V" if chosen else text, start, end))
        else:
            if text in ("(", "[", "{"):
                opens_def = text == "(" and i >= 2 and raw[i - 2][0].string == "def"
                brackets.append("def" if opens_def else text)
            elif text in (")", "]", "}") and brackets:
                brackets.pop()
            tokens.append(Token(text, start, end))
    return tokens


_TOKEN_IDS: dict[str, int] = {}


def _top_level_starts(tokens: list[Token]) -> list[int]:
    """Where each top-level function or class (or its decorator) begins, after the first."""
    starts, depth = [], 0
    for i, token in enumerate(tokens):
        if token.text == "{":
            depth += 1
        elif token.text == "}":
            depth -= 1
        elif depth == 0 and token.text in ("def", "class", "@") and i and tokens[i - 1].text in (";", "}"):
            starts.append(i)
    return starts


def kgram_hashes(tokens: list[Token], k: int = K) -> list[int]:
    """The hash of every k consecutive tokens, in order (none for a cell shorter than k); MASKED for those
    that span two top-level functions, so that putting functions in another order changes no fingerprint."""
    ids = []
    for token in tokens:
        if (found := _TOKEN_IDS.get(token.text)) is None:
            found = _TOKEN_IDS[token.text] = zlib.crc32(token.text.encode())
        ids.append(found)
    starts = _top_level_starts(tokens)
    hashes = []
    for i in range(len(ids) - k + 1):
        after = bisect.bisect_right(starts, i)  # the first function starting after token i
        spans = after < len(starts) and starts[after] < i + k
        hashes.append(MASKED if spans else hash(tuple(ids[i : i + k])))
    return hashes


def winnow(hashes: list[int], window: int = W) -> list[int]:
    """Positions winnowing keeps: the smallest hash of every `window` consecutive ones (the rightmost of
    equals), each position once; a MASKED hash is never kept. A cell with fewer hashes than a window keeps
    its smallest."""
    window = min(window, len(hashes))
    chosen: list[int] = []
    for i in range(len(hashes) - window + 1) if window else ():
        part = hashes[i : i + window]
        low = min(part)
        if low == MASKED:
            continue
        position = i + window - 1 - part[::-1].index(low)
        if not chosen or chosen[-1] != position:
            chosen.append(position)
    return chosen

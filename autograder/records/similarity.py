"""Which submissions of an assignment share solution code: pairs ranked by a similarity score.

Only what students wrote counts: the code cells of submitted/<student>/<a>/*.ipynb whose grade_id is a
solution cell of the released notebook of the same name. Code everyone received (every code cell of the
release, the stubs of solution cells included) and code found in many submissions (common idioms: more
than `common_share` of them, at least COMMON_FLOOR) are ignored, so that honest pairs do not look alike
for writing what the course asks in the obvious way. What is left is fingerprinted (fingerprints.py), and
cells are compared with the same cell of the other submission: a pair's score (see `score`) is how much of
each cell the two share, averaged over their cells. Pairs are counted from an index of fingerprints, never
compared one by one, so 300 submissions take seconds.

The score is evidence for a person to read, never a verdict: similar code can be honest.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from autograder.course import Course, CourseError
from autograder.grading.intake import read_notebook
from autograder.notebook import cells
from autograder.records import fingerprints

COMMON_SHARE = 0.1  # code in more than this share of the submissions is a common idiom
COMMON_FLOOR = 3  # ... and in more than this many, so that in a small class a copied trio still counts
CELL_CAP = 6  # in a pair's score a cell counts by its fingerprints, up to this many: a long cell does not
# outweigh the rest, a near-empty one counts little
MIN_CELLS = 3  # and a pair counts at least this many full cells: near-blank notebooks sharing a cell do not score 1


@dataclass(frozen=True)
class Skipped:
    student: str
    path: str  # relative to the course
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class CellCode:
    label: str  # the solution cell's grade_id (notebook/grade_id when the assignment has several notebooks)
    code: str
    tokens: list[fingerprints.Token] = field(default_factory=list)
    kgrams: list[int] = field(default_factory=list)
    fingerprints: set[int] = field(default_factory=set)  # what winnowing kept, less release code and idioms


@dataclass
class StudentCode:
    student: str
    cells: dict[str, CellCode]  # by label, in notebook order

    @property
    def fingerprint_count(self) -> int:
        return sum(len(cell.fingerprints) for cell in self.cells.values())


@dataclass
class Pair:
    a: StudentCode
    b: StudentCode
    score: float
    shared: dict[str, int]  # cell label -> fingerprints in both, most first

    @property
    def shared_total(self) -> int:
        return sum(self.shared.values())

    def share_of(self, student: StudentCode) -> float:
        """The share of `student`'s fingerprints that the other holds too."""
        return self.shared_total / max(student.fingerprint_count, 1)

    def cell_summary(self) -> str:
        """"affine 14; relu 6": the cells holding shared fingerprints, and how many each."""
        return "; ".join(f"{label} {count}" for label, count in self.shared.items())


EMPTY = CellCode("", "")


@dataclass
class Release:
    solution_ids: dict[str, set[str]]  # notebook name -> grade_ids of its solution code cells
    code: list[str]  # every code cell of the release: what every student received
    names: set[str]  # names the release gives everyone (imports, functions it defines or asks for)


@dataclass
class Similarity:
    assignment: str
    compared: list[StudentCode]
    skipped: list[Skipped]
    pairs: list[Pair]  # every pair sharing a fingerprint, highest score first
    ignored: set[int]  # k-gram hashes of release code and common idioms
    common_limit: int  # a k-gram in more submissions than this is a common idiom


def _source(cell) -> str:
    """A cell's source as text (a saved notebook may hold it as a list of lines)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def read_release(course: Course, assignment: str) -> Release:
    folder = course.release_dir / assignment
    if not folder.is_dir():
        if (course.source_dir / assignment).is_dir():
            raise CourseError(f"{folder}: not found; run `course release {assignment}` first")
        known = ", ".join(course.assignments()) or "none"
        raise CourseError(f"unknown assignment {assignment!r}: no folder {folder} (known: {known})")
    release = Release({}, [], set())
    for path in sorted(folder.glob("*.ipynb")):
        notebook, problem = read_notebook(path)
        if notebook is None:
            raise CourseError(f"{path}: {problem}")
        ids = release.solution_ids.setdefault(path.name, set())
        for cell in notebook.cells:
            if cell.cell_type != "code":
                continue
            release.code.append(_source(cell))
            release.names |= fingerprints.given_names(release.code[-1])
            if cells.role(cell) == "solution" and cells.grade_id(cell):
                ids.add(cells.grade_id(cell))
    if not release.solution_ids:
        raise CourseError(f"{folder}: no notebooks; run `course release {assignment}` first")
    return release


def read_submissions(course: Course, assignment: str, release: Release) -> tuple[list[StudentCode], list[Skipped]]:
    """The solution code of every submission; a notebook that cannot be read is skipped with the reason."""
    several = len(release.solution_ids) > 1
    found, skipped = [], []
    students = sorted(p for p in course.submitted_dir.glob("*") if p.is_dir() and not p.name.startswith("."))
    for student_dir in students:
        folder = student_dir / assignment
        if not folder.is_dir():
            continue
        student, where = student_dir.name, folder.relative_to(course.root)
        if student_dir.is_symlink() or folder.is_symlink():  # it could show another student's or the source's code
            skipped.append(Skipped(student, str(where), "the submission folder is a symbolic link"))
            continue
        paths = sorted(folder.glob("*.ipynb"))
        if not paths:
            skipped.append(Skipped(student, str(where), "no notebook submitted"))
            continue
        solution_cells: dict[str, CellCode] = {}
        readable = False
        for path in paths:
            ids = release.solution_ids.get(path.name)
            if ids is None:
                known = ", ".join(sorted(release.solution_ids))
                skipped.append(Skipped(student, str(where / path.name), f"not a notebook of {assignment} ({known})"))
                continue
            try:
                notebook, problem = read_notebook(path)
            except OSError as error:
                notebook, problem = None, f"cannot be read: {error.strerror or error}"
            if notebook is None:
                skipped.append(Skipped(student, str(where / path.name), problem or "unreadable"))
                continue
            readable = True
            for cell in notebook.cells:
                gid = cells.grade_id(cell)
                if cell.cell_type == "code" and gid in ids:
                    label = f"{path.name}/{gid}" if several else gid
                    if label in solution_cells:  # a duplicated cell: both count, as one
                        solution_cells[label].code += "\n" + _source(cell)
                    else:
                        solution_cells[label] = CellCode(label, _source(cell))
        if readable:
            found.append(StudentCode(student, solution_cells))
    return found, skipped


def _tokenise(submission: StudentCode, release_names: set[str]) -> None:
    code = submission.cells.values()
    keep = release_names | {name for cell in code for name in fingerprints.given_names(cell.code, defined=False)}
    for cell in code:
        cell.tokens = fingerprints.normalised_tokens(cell.code, keep)
        cell.kgrams = fingerprints.kgram_hashes(cell.tokens)


def _ignored(submissions: list[StudentCode], release: Release, common_share: float) -> tuple[set[int], int]:
    """The k-grams of release code and of common idioms, and the count above which a k-gram is common."""
    ignored = {fingerprints.MASKED}
    for code in release.code:
        ignored.update(fingerprints.kgram_hashes(fingerprints.normalised_tokens(code, release.names)))
    seen = Counter()
    for submission in submissions:
        seen.update({h for cell in submission.cells.values() for h in cell.kgrams})
    limit = max(COMMON_FLOOR, int(common_share * len(submissions)))
    ignored.update(h for h, count in seen.items() if count > limit)
    return ignored, limit


def _fingerprint(cell: CellCode, ignored: set[int]) -> None:
    """Winnow each function of the cell on its own (kgram_hashes masks the k-grams between two), so that the
    same function keeps the same fingerprints wherever it stands."""
    cell.fingerprints = set()
    for is_function, run in itertools.groupby(cell.kgrams, key=lambda h: h != fingerprints.MASKED):
        if is_function:
            masked = [fingerprints.MASKED if h in ignored else h for h in run]
            cell.fingerprints.update(masked[position] for position in fingerprints.winnow(masked))


def score(a: StudentCode, b: StudentCode, shared: dict[str, int], cell_count: int) -> float:
    """For each cell where both students wrote code of their own, the share of the smaller cell's fingerprints
    found in the other; their mean, each cell weighted by its fingerprints up to CELL_CAP, over at least
    MIN_CELLS full cells (or all `cell_count` solution cells, when fewer). Copying shows in cell after cell;
    honest students meet in a cell or two."""
    total = weight = 0.0
    for label, cell in a.cells.items():
        smaller = min(len(cell.fingerprints), len(b.cells.get(label, EMPTY).fingerprints))
        if smaller:
            total += min(smaller, CELL_CAP) * shared.get(label, 0) / smaller
            weight += min(smaller, CELL_CAP)
    return total / max(weight, min(MIN_CELLS, cell_count) * CELL_CAP)


def compare(
    submissions: list[StudentCode], release: Release, common_share: float = COMMON_SHARE
) -> tuple[list[Pair], set[int], int]:
    """Every pair of submissions that shares a fingerprint, highest score first; the k-grams ignored (release
    code and common idioms) and the count above which a k-gram is common."""
    for submission in submissions:
        _tokenise(submission, release.names)
    ignored, limit = _ignored(submissions, release, common_share)
    index = defaultdict(list)  # (cell label, fingerprint) -> submissions holding it
    for number, submission in enumerate(submissions):
        for label, cell in submission.cells.items():
            _fingerprint(cell, ignored)
            for h in cell.fingerprints:
                index[label, h].append(number)
    cell_count = sum(len(ids) for ids in release.solution_ids.values())
    shared = defaultdict(Counter)  # (submission, submission) -> cell label -> shared fingerprints
    for (label, _), holders in index.items():
        for pair in itertools.combinations(holders, 2):
            shared[pair][label] += 1
    pairs = []
    for (i, j), counts in shared.items():
        a, b = submissions[i], submissions[j]
        order = list(a.cells)
        in_order = {label: counts[label] for label in sorted(counts, key=lambda c: (-counts[c], order.index(c)))}
        pairs.append(Pair(a, b, score(a, b, counts, cell_count), in_order))
    pairs.sort(key=lambda p: (-p.score, -p.shared_total, p.a.student, p.b.student))
    return pairs, ignored, limit


def similarity(course: Course, assignment: str, common_share: float = COMMON_SHARE) -> Similarity:
    """Read the release and the submissions of `assignment` and rank every pair that shares code."""
    release = read_release(course, assignment)
    submissions, skipped = read_submissions(course, assignment, release)
    pairs, ignored, limit = compare(submissions, release, common_share)
    return Similarity(assignment, submissions, skipped, pairs, ignored, limit)

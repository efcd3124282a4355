"""A class's submissions compared with each other and with the reference: the pairs ranked by how much code they
share, the stubs' given code excluded, written as an HTML report (kata/instructor/similarity_report.py).

    python grader.py similarity submissions/ --out similarity.html [--threshold 0.5]

Each entry of the folder is one student, read as batch grading reads it (kata/grading/batch.py: students();
kata/grading/submission.py: prepare(), strict: only the kata's files, plain and within the intake's caps, a zip
checked before it is unpacked); no code of a submission runs. The reference (solutions/) is one more entry,
`solutions (reference)`. Only files of the same name are compared (attention.py with attention.py).

The fingerprints are copydetect's (an optional dependency: the `similarity` extra): each file is tokenized with
Pygments and every name becomes V (so renaming a variable, a parameter, even `self`, changes nothing), every
string S, comments and layout are dropped; then every k-gram of that text (K characters) is hashed, the hashes
are winnowed (one kept per WINDOW consecutive k-grams), and those of the stubs' code (exercises/ as generated:
what every student received) are removed. A pair's similarity, for each side, is the share of that side's
fingerprinted text covered by k-grams found in the other side, over all its files; the pair is ranked by the
larger share, so a partial submission copied from the reference is found as well as a whole one. Reordered
independent statements still match: each statement is longer than a k-gram, and only the k-grams that straddle
two moved statements are lost.
"""

import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..course.exercises import generate
from ..course.files import check_output, write_atomic
from ..course.repository import REFERENCE, kata_files
from ..grading.batch import students
from ..grading.submission import SubmissionError, prepare
from .similarity_report import html

COMMAND = "similarity"
REFERENCE_NAME = "solutions (reference)"
K = 25  # the length of a k-gram, in characters of the normalised text (copydetect's default noise threshold)
WINDOW = 1  # winnowing window: 1 keeps every k-gram (the files are small; copydetect's default as well)
DEFAULT_THRESHOLD = 0.5  # measured (benchmarks/similarity_benchmark.py): a disguised copy 0.86, an independent one 0.03
INSTALL = "pip install -e .[similarity] (or: KATA_EXTRAS=similarity make setup)"


class MissingDependency(ValueError):
    """copydetect is not installed; the message is one line saying how to install it."""


def _copydetect():
    """copydetect's utilities, or MissingDependency."""
    try:
        from copydetect import utils
        from pygments import lexers, token
    except ImportError:
        raise MissingDependency(f"similarity needs the optional package copydetect, which is not installed: "
                                f"{INSTALL}") from None
    return utils, lexers, token


# ---------------------------------------------------------------- fingerprints

def normalise(code):
    """(text, starts, ends) as copydetect's filter_code makes the text: names V (self and cls too: copydetect
    keeps them, Pygments calls them builtins), def names F, class names O, strings S, the rest as it is; comments
    and blanks dropped. starts[i]:ends[i] is the piece of code the text's character i stands for."""
    _, lexers, token = _copydetect()
    names = {token.Name, token.Name.Variable, token.Name.Attribute}
    out, starts, ends, at = [], [], [], 0
    for kind, value in lexers.get_lexer_by_name("python").get_tokens(code):
        if kind in names or (kind == token.Name.Builtin.Pseudo and value in ("self", "cls")):
            short = "V"
        elif kind in token.Name.Function:
            short = "F"
        elif kind in token.Name.Class:
            short = "O"
        elif kind in token.Text or kind in token.Comment:
            short = ""
        elif kind in token.Literal.String:
            short = '"' if value in ("'", '"') else "S"
        else:
            short = None
        if short is None:  # kept as it is: a character for a character
            out.append(value)
            starts.extend(range(at, at + len(value)))
            ends.extend(range(at + 1, at + len(value) + 1))
        elif short:
            out.append(short)
            starts.append(at)
            ends.append(at + len(value))
        at += len(value)
    return "".join(out), np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64)


@dataclass
class Fingerprint:
    """A file's fingerprints, in the fields of copydetect's CodeFingerprint, made from our normalisation;
    starts[i]:ends[i] is the piece of code the normalised text's character i stands for."""
    filename: str
    raw_code: str
    filtered_code: str
    starts: object
    ends: object
    hashes: set
    hash_idx: dict
    k: int
    token_coverage: float


def fingerprint(name, code, boilerplate, k=K, window=WINDOW):
    """A file's Fingerprint: the winnowed hashes of its normalised k-grams, less every k-gram that holds any
    character of the given code. A character is given code when a k-gram of the stubs (boilerplate) covers it
    here; a k-gram straddling the end of a stub's given lines and a student's first statement is no evidence
    either (each exercise begins after the same given line, and most begin with an assignment)."""
    utils, _, _ = _copydetect()
    text, starts, ends = normalise(code)
    hashes = utils.hashed_kgrams(text, k)
    given = np.zeros(len(text) + 1, dtype=np.int64)  # +1 / -1 where a stub's k-gram starts / ends: a cumsum
    stub_grams = np.flatnonzero(np.isin(hashes, boilerplate))
    np.add.at(given, stub_grams, 1)
    np.add.at(given, stub_grams + k, -1)
    covered = np.concatenate([[0], np.cumsum(np.cumsum(given)[:len(text)] > 0)])  # covered chars before i
    chosen, index = utils.winnow(hashes, window, remove_duplicates=False) if len(hashes) else (hashes, hashes)
    own = covered[index + k] - covered[index] == 0 if len(index) else np.zeros(0, dtype=bool)
    hash_idx = {}
    for value, at in zip(chosen[own].tolist(), index[own].tolist()):
        hash_idx.setdefault(value, []).append(at)
    coverage = float(utils.get_token_coverage(hash_idx, k, len(text)))
    return Fingerprint(name, code, text, starts, ends, set(hash_idx), hash_idx, k, coverage)


def boilerplate_hashes(k=K):
    """Every k-gram hash of the stubs' code, exercises/ as generated from solutions/ (what every student got)."""
    utils, _, _ = _copydetect()
    found = [utils.hashed_kgrams(normalise(text)[0], k) for text in generate().values()]
    return np.unique(np.concatenate(found)) if found else np.array([], dtype=np.int64)


# ---------------------------------------------------------------- sources and pairs

@dataclass
class Source:
    """One submission, or the reference: its kata files' text by name, and what the reader should know."""
    name: str
    files: dict
    notes: list = field(default_factory=list)
    prints: dict = field(default_factory=dict)

    @property
    def size(self):
        return sum(p.token_coverage for p in self.prints.values())


@dataclass
class FileMatch:
    """The matching passages of one file: character ranges (start, end) of each side's code."""
    file: str
    share_a: float
    share_b: float
    spans_a: list
    spans_b: list
    code_a: str
    code_b: str


@dataclass
class Pair:
    a: str
    b: str
    matched_a: float  # characters of a's normalised text covered by k-grams found in b
    size_a: float  # a's fingerprinted characters (stub code excluded)
    matched_b: float
    size_b: float
    files: list

    @property
    def share_a(self):
        return self.matched_a / self.size_a if self.size_a else 0.0

    @property
    def share_b(self):
        return self.matched_b / self.size_b if self.size_b else 0.0

    @property
    def score(self):
        return max(self.share_a, self.share_b)


@dataclass
class Comparison:
    sources: list
    skipped: list  # (entry name, why)
    pairs: list  # ranked, highest score first
    threshold: float
    k: int = K
    window: int = WINDOW

    @property
    def flagged(self):
        return [pair for pair in self.pairs if pair.score > self.threshold]


def _read(folder, name):
    path = Path(folder) / name
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None


def read_sources(folder, work_dir, skip=()):
    """(sources, skipped): every entry of folder as a Source (kata files only, via the intake's strict copy), and
    (name, why) for each entry that could not be read."""
    sources, skipped = [], []
    for index, (name, entry) in enumerate(students(folder, skip=skip).items()):
        try:
            implementation, notes, _ = prepare(entry, Path(work_dir) / str(index), name=name, strict=True)
        except SubmissionError as error:
            skipped.append((name, str(error)))
            continue
        files = {file: text for file in kata_files() if (text := _read(implementation, file)) is not None}
        sources.append(Source(name, files, [n for n in notes if not n.startswith("__init__.py was not")]))
    return sources, skipped


def reference_source():
    return Source(REFERENCE_NAME, {file: _read(REFERENCE, file) for file in kata_files()})


def _matched(fingerprint, positions):
    """(characters of the normalised text covered by the k-grams starting at positions, those characters as
    (start, end) ranges of the code)."""
    covered = np.zeros(len(fingerprint.filtered_code) + 1, dtype=bool)
    for offset in range(fingerprint.k):
        covered[np.asarray(positions, dtype=np.int64) + offset] = True
    edges = np.flatnonzero(np.diff(np.concatenate([[False], covered])))  # where runs start and end
    runs = zip(edges[::2], edges[1::2])
    return int(covered.sum()), [(int(fingerprint.starts[s]), int(fingerprint.ends[e - 1])) for s, e in runs]


def compare_pair(first, second):
    """The Pair of two fingerprinted Sources, over the files they both hold: on each side, the characters
    covered by the k-grams the other side holds too (copydetect's find_fingerprint_overlap)."""
    utils, _, _ = _copydetect()
    matched_a = matched_b = 0.0
    files = []
    for file in sorted(set(first.prints) & set(second.prints)):
        one, two = first.prints[file], second.prints[file]
        at_one, at_two = utils.find_fingerprint_overlap(one.hashes, two.hashes, one.hash_idx, two.hash_idx)
        if not len(at_one):
            continue
        (count_a, spans_a), (count_b, spans_b) = _matched(one, at_one), _matched(two, at_two)
        matched_a, matched_b = matched_a + count_a, matched_b + count_b
        files.append(FileMatch(file, count_a / one.token_coverage, count_b / two.token_coverage, spans_a, spans_b,
                               one.raw_code, two.raw_code))
    return Pair(first.name, second.name, matched_a, first.size, matched_b, second.size, files)


def compare(sources, threshold=DEFAULT_THRESHOLD, skipped=(), k=K, window=WINDOW):
    """Fingerprint every Source (the stubs' code excluded) and rank every pair of them."""
    boilerplate = boilerplate_hashes(k)
    for source in sources:
        source.prints = {file: fingerprint(file, text, boilerplate, k, window) for file, text in source.files.items()}
    pairs = [compare_pair(a, b) for i, a in enumerate(sources) for b in sources[i + 1:]]
    pairs.sort(key=lambda pair: (-pair.score, pair.a, pair.b))
    return Comparison(sources, list(skipped), pairs, threshold, k, window)


def similarity(folder, out, threshold=DEFAULT_THRESHOLD):
    """Compare every submission of folder with each other and with the reference; write the HTML report to out.
    Returns the Comparison."""
    _copydetect()
    with tempfile.TemporaryDirectory(prefix="kata-similarity-") as work:
        sources, skipped = read_sources(folder, work, skip=[out])
    if not sources and not skipped:
        raise ValueError(f"{folder} holds no submission; expected one sub-folder or .zip per student")
    result = compare([*sources, reference_source()], threshold, skipped)
    write_atomic(out, html(result))
    return result


def summary(result, out):
    submissions = len(result.sources) - 1
    return (f"compared {submissions} submission{'s' * (submissions != 1)} and the reference: "
            f"{len(result.flagged)} pair{'s' * (len(result.flagged) != 1)} above {result.threshold:g}; wrote {out}")


# ---------------------------------------------------------------- the subcommand of grader.py

def _share(text):
    import argparse
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {text!r}")
    return value


def add_command(commands):
    """Add `similarity` to grader.py's subcommands (commands: its add_subparsers() object; kata/instructor/
    commands.py calls it, and checks --out before any work with the other outputs)."""
    parser = commands.add_parser(COMMAND, help="rank the pairs of a class's submissions and the reference by shared "
                                               "code (instructors; needs the similarity extra)")
    parser.add_argument("folder", metavar="DIR", help="a folder holding one sub-folder or zip per student")
    parser.add_argument("--out", default="similarity.html", metavar="FILE",
                        help="the HTML report to write (default %(default)s)")
    parser.add_argument("--threshold", type=_share, default=DEFAULT_THRESHOLD, metavar="SHARE",
                        help=f"flag a pair whose similarity (the larger of its two shares of matched code) is above "
                             f"this share (default {DEFAULT_THRESHOLD:g})")
    return parser


def run_command(args):
    """grader.py similarity: the output path checked first (again, for a caller other than grader.py), then
    copydetect, then the work."""
    check_output(args.out, "--out", kind="html")
    _copydetect()
    result = similarity(args.folder, args.out, args.threshold)
    for name, why in result.skipped:
        print(f"skipped {name}: {why}", file=sys.stderr)
    for source in result.sources:
        for note in source.notes:
            print(f"{source.name}: {note}", file=sys.stderr)
    print(summary(result, args.out))
    return 0

"""Tests of `grader.py similarity` (kata/instructor/similarity.py): a disguised copy of the reference is flagged
against it and ranked first, an independent implementation is not, the stubs' given code is no evidence, the
report is a self-contained page that escapes what it shows, zips are read as batch grading reads them, and a
missing copydetect is one line saying how to install it."""

import shutil
import subprocess
import sys
import zipfile

import pytest

from kata.course.repository import REFERENCE, ROOT
from kata.grading.submission import MAX_FILE_BYTES
from kata.instructor import similarity as sim
from meta.disguise import disguise
from meta.helpers import write_stubs

pytestmark = pytest.mark.meta

copydetect = pytest.importorskip("copydetect", reason="the similarity extra is not installed")

INDEPENDENT = ROOT / "meta" / "independent"
LESSON_TESTS = ["tests/test_lesson02_attention.py", "tests/test_lesson03_layers.py", "tests/test_lesson06_loss.py"]


def independent(target):
    """A student who wrote lessons 02, 03 and 06 anew and left the rest as given (the stubs)."""
    write_stubs(target)
    for path in INDEPENDENT.glob("*.py"):
        shutil.copyfile(path, target / path.name)
    return target


def score(result, a, b):
    pair = next(p for p in result.pairs if {p.a, p.b} == {a, b})
    return pair.score


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A class of four (a disguised copy of the reference, an independent implementation, two untouched copies of
    the stubs) compared once; (result, report text, stdout line, report path)."""
    folder = tmp_path_factory.mktemp("class")
    disguise(REFERENCE, folder / "disguised")
    independent(folder / "independent")
    write_stubs(folder / "stubs_a")
    write_stubs(folder / "stubs_b")
    out = folder / "report.html"  # inside the class folder: never read as a submission
    result = sim.similarity(folder, out)
    return result, out.read_text(encoding="utf-8"), sim.summary(result, out), out


def test_the_disguised_reference_is_flagged_and_ranked_first(course):
    result, *_ = course
    first = result.pairs[0]
    assert {first.a, first.b} == {"disguised", sim.REFERENCE_NAME}, [(p.a, p.b, p.score) for p in result.pairs]
    assert first.score > result.threshold and first in result.flagged
    assert min(first.share_a, first.share_b) > result.threshold, "both sides: the whole reference was copied"


def test_the_independent_implementation_is_not_flagged(course):
    result, *_ = course
    for other in (sim.REFERENCE_NAME, "disguised"):
        assert score(result, "independent", other) < result.threshold / 2, (other, score(result, "independent", other))
    assert [{p.a, p.b} for p in result.flagged] == [{"disguised", sim.REFERENCE_NAME}]


def test_the_stubs_given_code_is_no_evidence(course):
    result, _, line, out = course
    for pair in result.pairs:
        if "stubs_a" in (pair.a, pair.b) or "stubs_b" in (pair.a, pair.b):
            assert pair.score == 0.0 and pair.files == [], (pair.a, pair.b, pair.score)
    assert line == f"compared 4 submissions and the reference: 1 pair above {sim.DEFAULT_THRESHOLD:g}; wrote {out}"


def test_the_report_states_the_measure_ranks_and_shows_the_passages(course):
    result, text, *_ = course
    assert text.startswith("<!DOCTYPE html>") and "<script" not in text and "http" not in text
    assert "the larger of the two shares" in text and f"above {result.threshold:g}" in text
    ranking = text[text.index("<h2>Ranking</h2>"):text.index("<h2>Matching passages</h2>")]
    assert ranking.count("<tr") == len(result.pairs) + 1 == 11  # 5 sources: 10 pairs, and the header
    assert ranking.index("disguised") < ranking.index("independent")
    passages = text[text.index("<h2>Matching passages</h2>"):]
    assert "<h3" in passages and "disguised and solutions (reference)" in passages
    assert "<h4>attention.py</h4>" in passages and "<mark>" in passages


def test_one_class_only_of_stubs_flags_nothing(tmp_path):
    folder = tmp_path / "class"
    write_stubs(folder / "ann")
    write_stubs(folder / "bob")
    result = sim.similarity(folder, tmp_path / "out.html")
    assert result.flagged == [] and all(p.score == 0.0 for p in result.pairs)
    assert sim.summary(result, "out.html") == f"compared 2 submissions and the reference: 0 pairs above " \
                                               f"{sim.DEFAULT_THRESHOLD:g}; wrote out.html"


def test_code_and_names_are_escaped_and_zips_are_read(tmp_path):
    """A copy of the reference in a zip (inside a clone's exercises/), one line holding markup; a student's
    name holding markup too: both shown as text, never as tags."""
    folder = tmp_path / "class"
    copied = tmp_path / "copied"
    shutil.copytree(REFERENCE, copied)
    loss = copied / "loss.py"
    loss.write_text(loss.read_text().replace('"""-> (B, V): (softmax(logits) - one_hot(targets)) / B"""',
                                             '"""</pre><script>alert(1)</script>"""'), encoding="utf-8")
    folder.mkdir()
    with zipfile.ZipFile(folder / "zoe.zip", "w") as archive:
        for path in sorted(copied.glob("*.py")):
            archive.write(path, f"kata-main/exercises/{path.name}")
    shutil.copytree(copied, folder / "<b>eve")
    (folder / "notes.txt").write_text("not a submission")
    result = sim.similarity(folder, tmp_path / "out.html")
    text = (tmp_path / "out.html").read_text(encoding="utf-8")
    assert {result.pairs[0].a, result.pairs[0].b} <= {"zoe", "<b>eve", sim.REFERENCE_NAME}
    assert score(result, "zoe", sim.REFERENCE_NAME) > 0.95 and score(result, "zoe", "<b>eve") > 0.95
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<b>eve" not in text and "&lt;b&gt;eve" in text
    assert result.skipped and result.skipped[0][0] == "notes.txt" and "neither a folder nor a .zip" in text


def test_files_over_the_intakes_cap_are_left_out_and_said(tmp_path):
    folder = tmp_path / "class"
    big = write_stubs(folder / "big")
    big.joinpath("attention.py").write_text("x = 1\n" * (MAX_FILE_BYTES // 6 + 1))
    result = sim.similarity(folder, tmp_path / "out.html")
    source = next(s for s in result.sources if s.name == "big")
    assert "attention.py" not in source.files
    assert any("attention.py is" in note and "ignored" in note for note in source.notes), source.notes
    assert "attention.py is" in (tmp_path / "out.html").read_text(encoding="utf-8")


def test_a_missing_copydetect_is_one_line_saying_how_to_install_it(tmp_path, monkeypatch, capsys):
    import grader

    write_stubs(tmp_path / "class" / "ann")
    monkeypatch.setitem(sys.modules, "copydetect", None)  # import copydetect now raises ImportError
    monkeypatch.setitem(sys.modules, "copydetect.utils", None)
    status = grader.main(["similarity", str(tmp_path / "class"), "--out", str(tmp_path / "out.html")])
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("grader.py: similarity needs the optional "
                                                                      "package copydetect"), captured.err
    assert "pip install -e .[similarity]" in captured.err and "KATA_EXTRAS=similarity make setup" in captured.err
    assert not (tmp_path / "out.html").exists()


def test_the_output_is_checked_before_any_work(tmp_path):
    mine = tmp_path / "mine.py"
    mine.write_text("print('my work')\n")
    for out, says in ((tmp_path, "it is a folder"), (mine, "it is not an HTML page")):
        proc = subprocess.run([sys.executable, "grader.py", "similarity", str(tmp_path / "nowhere"), "--out",
                               str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and proc.stdout == "", proc.stdout + proc.stderr
        assert proc.stderr.startswith(f"grader.py: --out {out}: ") and says in proc.stderr, proc.stderr
    assert mine.read_text() == "print('my work')\n"
    old = tmp_path / "old.html"
    old.write_text("<!DOCTYPE html>\n<html></html>\n")
    write_stubs(tmp_path / "class" / "ann")
    proc = subprocess.run([sys.executable, "grader.py", "similarity", str(tmp_path / "class"), "--out", str(old),
                           "--threshold", "0.3"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"compared 1 submission and the reference: 0 pairs above 0.3; wrote {old}\n"
    assert "Similarity report" in old.read_text()


@pytest.mark.parametrize("name, build", [
    ("disguised", lambda target: disguise(REFERENCE, target)),
    ("independent", lambda target: shutil.copytree(INDEPENDENT, target, dirs_exist_ok=True)),
])
def test_the_disguised_and_independent_implementations_are_correct(tmp_path, name, build):
    """Both pass the lesson tests of what they rewrite (the independent one over a copy of the reference)."""
    target = tmp_path / name
    shutil.copytree(REFERENCE, target)
    build(target)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *LESSON_TESTS,
                           "--impl", str(target)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]

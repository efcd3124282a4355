"""Tests of train.py (kata/tools/train.py, summary.py, walkthrough.py, plots.py): unfinished implementations, the
metrics, the checkpoint and the summary of a short run, the pictures, --interactive, failures during training, bad
options, Ctrl-C."""

import io
import json
import math
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import kata.tools.plots
from kata.course.contract import transformer_params
from kata.course.exercises import unfinished
from kata.course.implementation import load
from kata.course.repository import ROOT
from kata.tools import checkpoint
from kata.tools.train import CONFIG, Interrupted, parse_args, run
from meta.helpers import insert_first

pytestmark = pytest.mark.meta

REF = load("solutions")
OPERATIONS = ["First", "Second", "Last", "Max", "Min"]
SMALL_RUN = ["--impl", "solutions", "--size", "small", "--seed", "0", "--no-progress"]


def copy_of_solutions(target):
    shutil.copytree(ROOT / "solutions", target, ignore=shutil.ignore_patterns("__pycache__"))
    return target.resolve()


# ---------------------------------------------------------------- an unfinished implementation

def test_an_unfinished_implementation_is_refused_at_once(stubs):
    first = unfinished(stubs)
    lesson_id, symbol, file, line, section = first[0]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "train.py", "--impl", str(stubs)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    seconds = time.perf_counter() - start
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert seconds < 10, f"refusing an unfinished implementation took {seconds:.1f} s"
    assert "is not finished" in output, output
    assert f"The first: {symbol} in exercises/{file}, line {line} (lesson {lesson_id}" in output, output
    assert "python grader.py" in output
    assert "Traceback" not in output, output
    assert "Training" not in proc.stdout, "nothing may be trained"


# ---------------------------------------------------------------- a short run of the reference

@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """run() on the reference: --size small --epochs 2 with --metrics-json, --checkpoint and --plots."""
    folder = tmp_path_factory.mktemp("run")
    files = {"metrics": folder / "metrics.json", "checkpoint": folder / "model.npz", "plots": folder / "plots"}
    args = parse_args(SMALL_RUN + ["--epochs", "2", "--metrics-json", str(files["metrics"]),
                                   "--checkpoint", str(files["checkpoint"]), "--plots", str(files["plots"])])
    out = io.StringIO()
    metrics = run(args, out=out)
    return metrics, out.getvalue(), files


def test_the_metrics_json_has_the_spec_keys(short_run):
    metrics, _, files = short_run
    written = json.loads(files["metrics"].read_text())
    assert written == json.loads(json.dumps(metrics)), "run() returns what it writes"
    assert isinstance(written["test_accuracy"], float) and 0.0 <= written["test_accuracy"] <= 1.0
    per_op = written["per_operation_accuracy"]
    assert list(per_op) == OPERATIONS, per_op
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in per_op.values()), per_op
    assert isinstance(written["train_seconds"], float) and 0.0 < written["train_seconds"] < 60
    assert written["epochs"] == 2 and isinstance(written["epochs"], int)
    assert written["seed"] == 0 and isinstance(written["seed"], int)
    assert (written["train_examples"], written["validation_examples"], written["test_examples"]) == (800, 100, 100)
    assert written["epochs_run"] == 2 and len(written["history"]) == 2
    assert written["best_epoch"] in (1, 2)
    counts = np.array(written["confusion_matrix"]["counts"])
    assert counts.sum() == 100 and math.isclose(np.trace(counts) / 100, written["test_accuracy"])


def test_the_checkpoint_restores_the_reported_model(short_run):
    metrics, _, files = short_run
    model, header = checkpoint.restore(REF, files["checkpoint"])
    assert header["config"] == CONFIG
    data = REF.generate_tokenized_dataset(1000, num_args=3, seed=0)
    _, _, test_set = REF.split_dataset(data, 0.8, 0.1, seed=0)
    tokens, targets, mask = REF.create_batch(test_set)
    _, accuracy = REF.evaluate(model, tokens, targets, REF.CrossEntropyLoss())
    assert float(accuracy) == metrics["test_accuracy"], (
        f"the checkpoint gives {accuracy} on the test split, the metrics say {metrics['test_accuracy']}")
    assert header["metrics"]["test_accuracy"] == metrics["test_accuracy"]
    assert header["metrics"]["best_epoch"] == metrics["best_epoch"]
    assert header["trained_with"]["seed"] == 0 and header["trained_with"]["size"] == "small"


def test_the_summary_shows_table_confusion_and_attention(short_run):
    metrics, text, files = short_run
    assert "epoch 1/2: train loss" in text and "epoch 2/2: train loss" in text
    table = text.split("Test accuracy per operation:")[1]
    for op in OPERATIONS:
        assert re.search(rf"^{op}\s+{metrics['per_operation_accuracy'][op]:.4f}$", table, flags=re.MULTILINE), (
            f"no row for {op} in the per-operation table:\n{table[:400]}")
    assert "Confusion matrix on the test set" in text
    assert len(re.findall(r"^true \d ", text, flags=re.MULTILINE)) >= 2, text
    for layer in (1, 2):
        assert f"Attention of the first token in layer {layer}" in text
    assert len(re.findall(r"head [0-3]: (focused|spread )", text)) == 2 * 5 * 4, "a line per layer, operation, head"
    assert f"test accuracy {metrics['test_accuracy']:.4f}" in text
    assert f"saved the model of epoch {metrics['best_epoch']} to {files['checkpoint']}" in text
    assert f"wrote {files['metrics']}" in text


def test_a_run_that_learnt_nothing_ends_by_saying_so_and_what_to_try(short_run):
    metrics, text, _ = short_run
    assert metrics["test_accuracy"] < 0.3, "two epochs of the small set should not learn the task (the case tested)"
    last = text.rstrip().splitlines()[-1]
    assert last.startswith("The model did not learn the task: its test loss"), last
    assert "ln 10 = 2.303" in last and "--epochs 30" in last and "--size medium" in last, last


def test_not_learnt_is_silent_for_a_model_that_learnt():
    from kata.tools.train import not_learnt

    args = parse_args(SMALL_RUN)
    assert not_learnt({"test_loss": 0.05, "test_accuracy": 0.99}, args, 390) is None
    assert not_learnt({"test_loss": 1.2, "test_accuracy": 0.6}, args, 390) is None, "learning, not there yet"
    assert "did not learn" in not_learnt({"test_loss": 2.2, "test_accuracy": 0.5}, args, 390), "the loss says no"
    assert "did not learn" in not_learnt({"test_loss": 1.5, "test_accuracy": 0.2}, args, 390), "chance accuracy"
    large = not_learnt({"test_loss": 2.3, "test_accuracy": 0.1}, parse_args(SMALL_RUN + ["--size", "large"]), 9)
    assert "--size" not in large and "--epochs 10" in large, large


def test_the_default_epochs_depend_on_the_size():
    """The small set has 13 steps an epoch: 5 epochs end on the ln 10 plateau (test accuracy 0.18 for the reference,
    seed 0), 30 at 1.0."""
    assert parse_args(["--size", "small"]).epochs == 30
    assert parse_args([]).epochs == parse_args(["--size", "large"]).epochs == 5
    assert parse_args(["--size", "small", "--epochs", "3"]).epochs == 3


def test_plots_writes_the_pictures(short_run):
    _, text, files = short_run
    names = ["curves.png", "confusion.png"] + [f"attention_{op}.png" for op in OPERATIONS]
    assert sorted(p.name for p in files["plots"].iterdir()) == sorted(names)
    for name in names:
        data = (files["plots"] / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000, f"{name} is not a PNG picture"
    assert f"wrote 7 pictures to {files['plots']}" in text


def test_plots_without_matplotlib_says_so_and_the_run_succeeds(tmp_path, monkeypatch):
    monkeypatch.setattr(kata.tools.plots, "_pyplot", lambda: None)
    out = io.StringIO()
    metrics = run(parse_args(SMALL_RUN + ["--epochs", "1", "--plots", str(tmp_path / "plots")]), out=out)
    assert "matplotlib is not installed" in out.getvalue(), out.getvalue()[-500:]
    assert not (tmp_path / "plots").exists()
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["epochs_run"] == 1


# ---------------------------------------------------------------- --interactive

STAGES = (["Walking one example through the model: Max (", "1. Tokens", "2. Embedding", "3. Positions added"]
          + [heading for block in (1, 2) for heading in
             [f"4.{block} Block {block}, attention"] + [f"block {block}, head {h}" for h in range(4)]
             + [f"5.{block} Block {block}, feed-forward"]]
          + ["6. Pooling", "7. Logits", "8. Probabilities", "9. Loss: -ln p(right answer", "10. Backward"]
          + [f"\n{path}  " for path in transformer_params(CONFIG["num_layers"])])
PAUSES_IN_WALK = 3 + 2 * CONFIG["num_layers"] + 2  # tokens, embedding, positions; 2 per block; loss; before training


class Keys:
    """A stdin that counts how often it is read."""

    def __init__(self, text):
        self.stream, self.reads = io.StringIO(text), 0

    def readline(self):
        self.reads += 1
        return self.stream.readline()


def interactive(keys, epochs):
    out = io.StringIO()
    metrics = run(parse_args(SMALL_RUN + ["--epochs", str(epochs), "--interactive"]), out=out, stdin=keys)
    return metrics, out.getvalue()


def assert_every_stage_in_order(text):
    positions = []
    for heading in STAGES:
        assert heading in text, f"--interactive should show {heading!r}:\n{text[:3000]}"
        positions.append(text.index(heading))
    assert positions == sorted(positions), "the stages must come in the order of the forward and backward pass"
    assert text.index("10. Backward") < text.index("epoch 1/"), "the walk comes before training"


def test_interactive_pauses_at_every_stage_and_epoch():
    keys = Keys("\n" * 30)
    metrics, text = interactive(keys, epochs=2)
    assert_every_stage_in_order(text)
    assert keys.reads == PAUSES_IN_WALK + 2, f"one key press per stage and per epoch, got {keys.reads} reads"
    assert text.count("\n[press Enter") == keys.reads
    assert text.count("[press Enter for the next epoch") == 2
    assert "end of input" not in text
    reports = re.findall(r"^  Max \( .*: predicts \S+, p\(right answer\) = \d\.\d{3}(.*)$", text, flags=re.MULTILINE)
    assert len(reports) == 2, f"a report after each epoch:\n{text[-3000:]}"
    assert reports[0] == "" and re.fullmatch(r" \(was \d\.\d{3}\)", reports[1]), reports
    assert text.count("where the first token looks in the last layer, per head:") == 2
    assert "Best epoch" in text and metrics["epochs_run"] == 2


@pytest.mark.parametrize("keys_text, note", [("q\n", None), ("", "(end of input: running on without pausing)")])
def test_interactive_stops_pausing_after_q_or_end_of_input(keys_text, note):
    keys = Keys(keys_text)
    metrics, text = interactive(keys, epochs=1)
    assert keys.reads == 1, f"after {keys_text!r} nothing more may be read, got {keys.reads} reads"
    assert text.count("\n[press Enter") == 1
    if note:
        assert note in text
    assert_every_stage_in_order(text)
    assert "p(right answer) =" in text and "Best epoch" in text and metrics["epochs_run"] == 1


# ---------------------------------------------------------------- failures during training

def test_a_nan_loss_stops_training_with_a_message(monkeypatch):
    real_step = REF.train_step
    calls = []

    def diverging(*args, **kwargs):
        calls.append(1)
        loss, accuracy = real_step(*args, **kwargs)
        return (float("nan") if len(calls) == 3 else loss), accuracy

    monkeypatch.setattr(REF, "train_step", diverging)
    out = io.StringIO()
    with pytest.raises(SystemExit) as info:
        run(parse_args(SMALL_RUN + ["--epochs", "1"]), out=out)
    message = str(info.value.code)
    assert message.startswith("Training stopped: the loss became nan at step 2"), message
    assert "learning rate" in message and "python grader.py" in message
    assert len(calls) == 3, "training stops at the first NaN"
    assert "Best epoch" not in out.getvalue()


def test_an_exception_in_train_step_names_the_file_and_line(tmp_path):
    folder = copy_of_solutions(tmp_path / "broken")
    line = insert_first(folder / "training.py", "train_step", 'raise RuntimeError("boom in train_step")')
    out = io.StringIO()
    with pytest.raises(SystemExit) as info:
        run(parse_args(SMALL_RUN[2:] + [f"--impl={folder}", "--epochs", "1"]), out=out)
    message = str(info.value.code)
    assert "train.py stopped: your code raised RuntimeError: boom in train_step" in message, message
    assert f"at {folder / 'training.py'}:{line}" in message, message
    assert "Traceback" not in message and "python grader.py" in message


@pytest.mark.parametrize("qualname, extra", [
    pytest.param("per_operation_accuracy", [], id="in the summary after training"),
    pytest.param("MultiHeadAttention.forward", ["--interactive"], id="in the interactive walk before training"),
])
def test_an_exception_outside_the_training_loop_names_the_file_and_line(tmp_path, qualname, extra):
    folder = copy_of_solutions(tmp_path / "broken")
    file = "dynamics.py" if qualname == "per_operation_accuracy" else "attention.py"
    line = insert_first(folder / file, qualname, 'raise RuntimeError("boom")')
    with pytest.raises(SystemExit) as info:
        run(parse_args(SMALL_RUN[2:] + [f"--impl={folder}", "--epochs", "1"] + extra), out=io.StringIO(),
            stdin=io.StringIO(""))
    assert "RuntimeError: boom" in str(info.value.code) and f"{file}:{line}" in str(info.value.code)


# ---------------------------------------------------------------- bad options

@pytest.mark.parametrize("option", [["--epochs", "0"], ["--lr", "-1"], ["--lr", "nan"], ["--size", "huge"],
                                    ["--batch-size", "0"], ["--epochs", "two"]])
def test_invalid_options_are_usage_errors(option, capsys):
    with pytest.raises(SystemExit) as info:
        parse_args(["--impl", "solutions"] + option)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: train.py") and option[0] in err, err


# ---------------------------------------------------------------- Ctrl-C

def interrupting_step(at_step, scribble=True):
    """A train_step that raises KeyboardInterrupt at step at_step (counted from 0), after changing the weights
    halfway, as a Ctrl-C in the middle of an optimizer step would leave them."""
    real_step, calls = REF.train_step, []

    def step(model, *args, **kwargs):
        if len(calls) == at_step:
            if scribble:
                model.embedding.W[:1] += 1000.0
            raise KeyboardInterrupt
        calls.append(1)
        return real_step(model, *args, **kwargs)
    return step


def validation_accuracy_of(path):
    model, _ = checkpoint.restore(REF, path)
    data = REF.generate_tokenized_dataset(1000, num_args=3, seed=0)
    _, val_set, _ = REF.split_dataset(data, 0.8, 0.1, seed=0)
    tokens, targets, mask = REF.create_batch(val_set)
    return float(REF.evaluate(model, tokens, targets, REF.CrossEntropyLoss())[1])


def test_ctrl_c_keeps_the_best_finished_epoch(tmp_path, monkeypatch):
    """13 steps an epoch: Ctrl-C at step 30 is in epoch 3, with two epochs finished."""
    monkeypatch.setattr(REF, "train_step", interrupting_step(30))
    files = {"checkpoint": tmp_path / "model.npz", "metrics": tmp_path / "out" / "metrics.json",
             "plots": tmp_path / "plots"}
    out = io.StringIO()
    with pytest.raises(Interrupted) as info:
        run(parse_args(SMALL_RUN + ["--epochs", "5", "--checkpoint", str(files["checkpoint"]), "--metrics-json",
                                    str(files["metrics"]), "--plots", str(files["plots"])]), out=out)
    message, text = str(info.value), out.getvalue()
    metrics = json.loads(files["metrics"].read_text())
    best = metrics["best_epoch"]
    assert message.startswith(f"interrupted in epoch 3/5 (step 30 of 65): kept epoch {best}, the best of the 2 "
                              f"finished"), message
    # (after Ctrl-C: the curves and the confusion matrix; the attention pictures take seconds and are skipped)
    assert (f"wrote the model to {files['checkpoint']}, the metrics to {files['metrics']}, 2 pictures to "
            f"{files['plots']}") in message, message
    assert "\n" not in message, "one line"
    assert metrics["epochs_run"] == 2 and len(metrics["history"]) == 2 and best in (1, 2)
    assert metrics["interrupted"] == "in epoch 3/5 (step 30 of 65)" and metrics["train_accuracy"] is None
    kept = metrics["history"][best - 1]["validation_accuracy"]
    assert kept == max(epoch["validation_accuracy"] for epoch in metrics["history"])
    assert validation_accuracy_of(files["checkpoint"]) == kept, (
        "the checkpoint must hold the weights of the best finished epoch, not those Ctrl-C left half-updated")
    model, header = checkpoint.restore(REF, files["checkpoint"])
    assert header["metrics"]["best_epoch"] == best and header["metrics"]["test_accuracy"] == metrics["test_accuracy"]
    assert sorted(p.name for p in files["plots"].glob("*.png")) == ["confusion.png", "curves.png"]
    assert f"Best epoch: {best} (validation accuracy {kept:.4f})" in text
    assert "train accuracy not measured (training was interrupted)" in text
    assert "epoch 3/5" not in text and "did not learn" not in text


def test_quick_measures_agree_with_the_full_ones():
    """After Ctrl-C the test set is measured in one pass of batches, with the tool's own per-operation count."""
    from kata.tools import summary

    model, _ = checkpoint.restore(REF, ROOT / "checkpoints" / "pretrained.npz")
    data = REF.generate_tokenized_dataset(1000, num_args=3, seed=1)
    splits = REF.split_dataset(data, 0.8, 0.1, seed=1)
    full, quick = summary.measure(REF, model, splits), summary.measure(REF, model, splits, quick=True)
    assert quick.test_accuracy == full.test_accuracy and math.isclose(quick.test_loss, full.test_loss, rel_tol=1e-9)
    assert quick.per_operation == full.per_operation
    assert (quick.counts == full.counts).all() and quick.labels == full.labels
    assert quick.train_accuracy is None and full.train_accuracy is not None


def test_ctrl_c_before_an_epoch_finished_saves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(REF, "train_step", interrupting_step(5))
    args = parse_args(SMALL_RUN + ["--epochs", "5", "--checkpoint", str(tmp_path / "model.npz"), "--metrics-json",
                                   str(tmp_path / "metrics.json")])
    with pytest.raises(Interrupted) as info:
        run(args, out=io.StringIO())
    assert str(info.value) == "interrupted in epoch 1/5 (step 5 of 65): nothing was saved, as no epoch had finished"
    assert list(tmp_path.iterdir()) == []


def test_a_second_ctrl_c_while_saving_leaves_whole_files(tmp_path, monkeypatch):
    """Ctrl-C in the metrics' write: the checkpoint, written before, is whole; the old metrics file is unchanged."""
    import kata.tools.train

    monkeypatch.setattr(REF, "train_step", interrupting_step(15, scribble=False))

    def interrupted_write(path, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(kata.tools.train, "write_json", interrupted_write)
    (tmp_path / "metrics.json").write_text('{"earlier": true}\n')
    args = parse_args(SMALL_RUN + ["--epochs", "5", "--checkpoint", str(tmp_path / "model.npz"), "--metrics-json",
                                   str(tmp_path / "metrics.json")])
    with pytest.raises(Interrupted) as info:
        run(args, out=io.StringIO())
    assert str(info.value) == (
        f"interrupted in epoch 2/5 (step 15 of 65), and again before everything was saved: wrote the model to "
        f"{tmp_path / 'model.npz'}; not written: --metrics-json (files already there are left as they were)")
    assert (tmp_path / "metrics.json").read_text() == '{"earlier": true}\n'
    checkpoint.restore(REF, tmp_path / "model.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "model.npz"], "no temporary file left"


def read_until(stream, prefix, limit=120.0):
    """The lines read from stream up to and including the first starting with prefix (a generous bound)."""
    lines, end = [], time.monotonic() + limit
    while time.monotonic() < end:
        line = stream.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith(prefix):
            return lines
    raise AssertionError(f"no line starting with {prefix!r} within {limit} s:\n{''.join(lines)}")


def train_py(*options):
    return subprocess.Popen([sys.executable, "train.py", "--impl", "solutions", "--no-progress", *options], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is sent to a process group there")
def test_sigint_after_a_finished_epoch_writes_its_files_and_exits_130(tmp_path):
    proc = train_py("--size", "small", "--epochs", "200", "--checkpoint", str(tmp_path / "model.npz"),
                    "--metrics-json", str(tmp_path / "metrics.json"))
    read_until(proc.stdout, "epoch 2/200:")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert re.fullmatch(r"train\.py: interrupted (in|after) epoch \d+/200 \(step \d+ of 2600\): kept epoch \d+, the "
                        r"best of the \d+ finished \(validation accuracy [\d.]+; the summary above is of it\); wrote "
                        rf"the model to {re.escape(str(tmp_path))}/model\.npz, the metrics to "
                        rf"{re.escape(str(tmp_path))}/metrics\.json", last), err
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["epochs_run"] >= 2 and metrics["interrupted"] in last
    assert validation_accuracy_of(tmp_path / "model.npz") == metrics["validation_accuracy"]
    assert "Traceback" not in err and "Best epoch" in out


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is sent to a process group there")
@pytest.mark.parametrize("gap", [0.0, 0.02, 0.1])
def test_two_quick_ctrl_c_still_write_the_kept_epochs_files(tmp_path, gap):
    """A double tap of Ctrl-C (a reflex) costs nothing: the second is ignored until the model and metrics are
    written."""
    proc = train_py("--size", "small", "--epochs", "200", "--checkpoint", str(tmp_path / "model.npz"),
                    "--metrics-json", str(tmp_path / "metrics.json"))
    read_until(proc.stdout, "epoch 2/200:")
    proc.send_signal(signal.SIGINT)
    time.sleep(gap)  # (not a timing assertion: the gap between the two signals, as a hand makes it)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    # (-SIGINT: the second signal came after all was written, while Python was shutting down)
    assert proc.returncode in (130, -signal.SIGINT), err
    assert "wrote the model to" in err and "the metrics to" in err and "wrote nothing" not in err, err
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert validation_accuracy_of(tmp_path / "model.npz") == metrics["validation_accuracy"]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is sent to a process group there")
def test_sigint_before_an_epoch_finished_says_nothing_was_saved(tmp_path):
    """The large set's first epoch has 1,250 steps: the signal arrives long before its end."""
    proc = train_py("--size", "large", "--checkpoint", str(tmp_path / "model.npz"))
    read_until(proc.stdout, "Training solutions's Transformer")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert re.search(r"^train\.py: interrupted (before the first training step|in epoch 1/5 \(step \d+ of 6250\)): "
                     r"nothing was saved, as no epoch had finished$", err, flags=re.MULTILINE), err
    assert list(tmp_path.iterdir()) == [] and "Traceback" not in err


def test_training_again_to_the_same_checkpoint_keeps_the_earlier_one(tmp_path, monkeypatch):
    """The reviewer's everyday case: a second run with the same --checkpoint replaced the first model."""
    import kata.tools.train

    monkeypatch.setattr(kata.tools.train, "STATE", tmp_path / "state")
    path = tmp_path / "my.npz"
    run(parse_args(SMALL_RUN + ["--epochs", "1", "--checkpoint", str(path)]), out=io.StringIO())
    first = path.read_bytes()
    out = io.StringIO()
    run(parse_args(SMALL_RUN + ["--epochs", "1", "--seed", "3", "--checkpoint", str(path)]), out=out)
    copies = list((tmp_path / "state" / "backup").glob("*/my.npz"))
    assert len(copies) == 1 and copies[0].read_bytes() == first
    assert f"the checkpoint already at {path} was copied to" in out.getvalue()

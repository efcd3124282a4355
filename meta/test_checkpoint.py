"""Tests of the checkpoint files (kata/tools/checkpoint.py): round trips, every way a file can be bad, atomic saves,
and the shipped pretrained model."""

import json
import os
import shutil
import zipfile

import numpy as np
import pytest

import kata.course.files
from kata.course.contract import get_path, transformer_params
from kata.course.implementation import load
from kata.course.repository import ROOT
from kata.tools import checkpoint
from kata.tools.checkpoint import HEADER, CheckpointError

pytestmark = pytest.mark.meta

REF = load("solutions")
SMALL = {"vocab_size": 20, "embed_dim": 8, "num_heads": 2, "num_layers": 1, "ffn_dim": 16, "max_seq_len": 12}
PATHS = transformer_params(SMALL["num_layers"])
PRETRAINED = ROOT / "checkpoints" / "pretrained.npz"


def small_model(seed=1):
    """A small reference model whose every parameter is random (no zero biases, no unit gammas)."""
    model = REF.Transformer(**SMALL)
    rng = np.random.default_rng(seed)
    for path in PATHS:
        target = get_path(model, path)
        target[...] = rng.normal(size=target.shape)
    return model


def batch():
    examples = REF.generate_tokenized_dataset(16, num_args=3, seed=3)
    tokens, targets, mask = REF.create_batch(examples)
    return tokens, mask


@pytest.fixture
def saved(tmp_path):
    """(path, model): a small model saved with metrics and an extra header entry."""
    model = small_model()
    path = tmp_path / "model.npz"
    checkpoint.save(path, model, SMALL, metrics={"test_accuracy": 0.75}, extra={"note": "hello", "seed": 7})
    return path, model


# ---------------------------------------------------------------- round trip

def test_round_trip_gives_the_same_model_and_header(saved):
    path, model = saved
    restored, header = checkpoint.restore(REF, path)
    tokens, mask = batch()
    assert np.array_equal(restored.forward(tokens, mask), model.forward(tokens, mask)), (
        "the restored model must compute exactly what the saved one did")
    for name in PATHS:
        original, loaded = get_path(model, name), get_path(restored, name)
        assert loaded.shape == original.shape and np.array_equal(loaded, original), f"{name} differs after restore"
    assert header["format"] == checkpoint.FORMAT == "transformer-kata checkpoint"
    assert header["version"] == checkpoint.VERSION == 1
    assert header["config"] == SMALL
    assert header["metrics"] == {"test_accuracy": 0.75}
    assert header["note"] == "hello" and header["seed"] == 7


def test_load_returns_exactly_the_parameter_arrays(saved):
    path, model = saved
    header, arrays = checkpoint.load(path)
    assert sorted(arrays) == sorted(PATHS), "load returns the parameters by path, without the header entry"
    assert all(np.array_equal(arrays[name], get_path(model, name)) for name in PATHS)
    assert header["config"] == SMALL


def test_restore_writes_into_the_models_own_arrays(saved, monkeypatch):
    path, model = saved
    built = []
    original = REF.Transformer

    def recording(**config):
        fresh = original(**config)
        built.append({name: get_path(fresh, name) for name in PATHS})
        return fresh

    monkeypatch.setattr(REF, "Transformer", recording)
    restored, _ = checkpoint.restore(REF, path)
    assert len(built) == 1, "restore builds exactly one model"
    for name in PATHS:
        assert get_path(restored, name) is built[0][name], (
            f"{name}: restore must write into the array the model was built with, not replace it")
        assert np.array_equal(built[0][name], get_path(model, name))
    assert {id(p) for p, _ in restored.get_parameters()} == {id(a) for a in built[0].values()}, (
        "get_parameters (what an optimizer is built from) must hand out the restored arrays")
    tokens, mask = batch()
    before = restored.forward(tokens, mask)
    get_path(restored, "output.b")[...] += 1.0
    after = restored.forward(tokens, mask)
    np.testing.assert_allclose(after, before + 1.0, rtol=0, atol=1e-9,
                               err_msg="forward must use the restored arrays themselves")


def test_restore_into_another_implementation_folder(saved, tmp_path):
    path, model = saved
    folder = tmp_path / "other_impl"
    shutil.copytree(ROOT / "solutions", folder, ignore=shutil.ignore_patterns("__pycache__"))
    other = load(str(folder))
    assert other is not REF
    restored, header = checkpoint.restore(other, path)
    assert type(restored).__module__.startswith(other.__name__), type(restored).__module__
    tokens, mask = batch()
    assert np.array_equal(restored.forward(tokens, mask), model.forward(tokens, mask))
    assert header["config"] == SMALL


def test_save_rejects_an_incomplete_config(tmp_path):
    config = {k: v for k, v in SMALL.items() if k != "ffn_dim"}
    with pytest.raises(ValueError, match="ffn_dim"):
        checkpoint.save(tmp_path / "model.npz", small_model(), config)
    assert list(tmp_path.iterdir()) == [], "a refused save writes nothing"


# ---------------------------------------------------------------- bad files

TRIPPED = []


def _trip():
    TRIPPED.append("unpickled")
    return "tripped"


class Tripwire:
    """Unpickling this object records it in TRIPPED: a loader that unpickles is caught in the act."""

    def __reduce__(self):
        return (_trip, ())


def arrays_of(path):
    with np.load(path) as archive:
        return {name: archive[name] for name in archive.files}


def header_of(arrays):
    return json.loads(arrays[HEADER].tobytes().decode("utf-8"))


def set_header(arrays, header):
    arrays[HEADER] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    return arrays


def edit_header(change):
    def build(good, target):
        arrays = arrays_of(good)
        header = header_of(arrays)
        change(header)
        np.savez(target, **set_header(arrays, header))
    return build


def edit_arrays(change):
    def build(good, target):
        arrays = arrays_of(good)
        change(arrays)
        np.savez(target, **arrays)
    return build


def set_config(key, value):
    return edit_header(lambda header: header["config"].__setitem__(key, value))


def write_zip(members):
    def build(good, target):
        with zipfile.ZipFile(target, "w") as archive:
            for name, data in members.items():
                archive.writestr(name, data)
    return build


def nothing(good, target):
    pass


def truncated(good, target):
    data = good.read_bytes()
    target.write_bytes(data[:len(data) // 2])


def random_npz(good, target):
    rng = np.random.default_rng(0)
    np.savez(target, weights=rng.normal(size=(3, 4)), bias=rng.normal(size=4))


def npy_file(good, target):
    with open(target, "wb") as stream:  # np.save(path) would append .npy to the name
        np.save(stream, np.zeros(3))


def object_parameter(good, target):
    arrays = arrays_of(good)
    arrays["embedding.W"] = np.array([Tripwire(), Tripwire()], dtype=object)
    np.savez(target, **arrays)


BAD_CONFIG = "does not give the positive integers"

CASES = [
    ("missing file", nothing, "no checkpoint at"),
    ("a folder", lambda good, target: target.mkdir(), "it is a folder"),
    ("empty file", lambda good, target: target.write_bytes(b""), "not an .npz checkpoint: it is empty"),
    ("truncated file", truncated, "truncated or corrupt"),
    ("text file", lambda good, target: target.write_text("Max ( 5 3 9 ) -> 9\n" * 20), "it is another kind of file"),
    ("zip that is not an npz", write_zip({"notes.txt": "hello"}), "not a checkpoint of this project"),
    pytest.param("zip whose members are not .npy", write_zip({HEADER + ".npy": "hello", "embedding.W.npy": "x"}),
                 "are not .npy arrays", id="zip whose members are not .npy"),
    pytest.param("a single .npy array", npy_file, "it is a single .npy array", id="a single .npy array"),
    ("npz without a header", random_npz, f"no {HEADER} entry"),
    ("header not JSON", edit_arrays(lambda a: a.__setitem__(HEADER, np.frombuffer(b"{not json", np.uint8))),
     "not valid JSON"),
    ("header not UTF-8", edit_arrays(lambda a: a.__setitem__(HEADER, np.frombuffer(b"\xff\xfe{}", np.uint8))),
     "not valid JSON"),
    ("header of floats", edit_arrays(lambda a: a.__setitem__(HEADER, np.zeros(4))), "expected UTF-8 bytes"),
    ("header a JSON list", edit_arrays(lambda a: a.__setitem__(HEADER, np.frombuffer(b"[1, 2]", np.uint8))),
     "header format 'list'"),
    ("another format", edit_header(lambda h: h.__setitem__("format", "someone else's weights")),
     "header format \"someone else's weights\""),
    ("newer version", edit_header(lambda h: h.__setitem__("version", 2)), "version 2"),
    ("config missing a key", edit_header(lambda h: h["config"].pop("ffn_dim")), BAD_CONFIG),
    ("config not a dict", edit_header(lambda h: h.__setitem__("config", [8, 2])), BAD_CONFIG),
    ("config with a float", set_config("embed_dim", 8.0), BAD_CONFIG),
    ("config with a string", set_config("embed_dim", "8"), BAD_CONFIG),
    ("config with a bool", set_config("num_layers", True), BAD_CONFIG),
    ("config with a negative value", set_config("ffn_dim", -16), BAD_CONFIG),
    ("config with a zero", set_config("max_seq_len", 0), BAD_CONFIG),
    pytest.param("config whose heads do not divide the embedding", set_config("num_heads", 3),
                 "the heads must divide the embedding", id="config whose heads do not divide the embedding"),
    ("config with a huge max_seq_len", set_config("max_seq_len", 10 ** 12), "max_seq_len 1000000000000"),
    ("missing parameter array", edit_arrays(lambda a: a.pop("output.b")), "lacks ['output.b']"),
    ("extra array", edit_arrays(lambda a: a.__setitem__("surplus", np.zeros(3))), "unexpected arrays ['surplus']"),
    ("wrongly shaped array", edit_arrays(lambda a: a.__setitem__("embedding.W", np.zeros((20, 9)))),
     "embedding.W has shape (20, 9), expected (20, 8)"),
    ("integer array", edit_arrays(lambda a: a.__setitem__("output.W", a["output.W"].astype(np.int64))),
     "output.W is int64, expected floating-point"),
    ("complex array", edit_arrays(lambda a: a.__setitem__("output.W", a["output.W"].astype(complex))),
     "expected floating-point"),
    ("NaN in a parameter", edit_arrays(lambda a: a["blocks.0.norm1.gamma"].__setitem__(3, np.nan)),
     "blocks.0.norm1.gamma holds NaN or infinite values"),
    ("infinity in a parameter", edit_arrays(lambda a: a["output.b"].__setitem__(0, -np.inf)),
     "output.b holds NaN or infinite values"),
    ("object array (pickle)", object_parameter, "need pickle"),
    ("object header (pickle)", edit_arrays(lambda a: a.__setitem__(HEADER, np.array([Tripwire()], dtype=object))),
     "need pickle"),
]


@pytest.mark.parametrize("case, build, expected",
                         [pytest.param(*c, id=c[0]) if type(c) is tuple else c for c in CASES])
def test_every_bad_file_raises_checkpoint_error_naming_file_and_problem(saved, tmp_path, case, build, expected):
    good, _ = saved
    target = tmp_path / "bad.npz"
    build(good, target)
    TRIPPED.clear()
    with pytest.raises(CheckpointError) as info:
        checkpoint.restore(REF, target)
    message = str(info.value)
    assert str(target) in message, f"{case}: the message must name the file:\n{message}"
    assert expected in message, f"{case}: the message should say {expected!r}:\n{message}"
    assert TRIPPED == [], f"{case}: loading unpickled an object: {TRIPPED}"
    with pytest.raises(CheckpointError):
        checkpoint.load(target)


def test_the_object_array_case_would_run_code_if_unpickled(saved, tmp_path):
    """The tripwire of the pickle cases works: with pickle allowed, loading the file runs its code."""
    good, _ = saved
    target = tmp_path / "bad.npz"
    object_parameter(good, target)
    TRIPPED.clear()
    with np.load(target, allow_pickle=True) as archive:
        archive["embedding.W"]
    assert TRIPPED == ["unpickled", "unpickled"]
    TRIPPED.clear()


# ---------------------------------------------------------------- atomic save

class HalfWriter:
    """A stream that writes half of what it is given, then fails as a full disk would."""

    def __init__(self, stream, folder, seen):
        self.stream, self.folder, self.seen = stream, folder, seen

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stream.close()
        return False

    def write(self, data):
        self.stream.write(data[:len(data) // 2])
        self.stream.flush()
        self.seen.extend(sorted(p.name for p in self.folder.iterdir()))
        raise OSError(28, "No space left on device")


@pytest.mark.parametrize("failure", ["write fails half-way", "rename fails", "interrupted"])
def test_a_failed_save_leaves_the_previous_file_and_no_temporary_file(saved, tmp_path, monkeypatch, failure):
    path, _ = saved
    before = path.read_bytes()
    seen = []
    if failure == "write fails half-way":
        real_fdopen = os.fdopen
        monkeypatch.setattr(kata.course.files.os, "fdopen",
                            lambda fd, mode: HalfWriter(real_fdopen(fd, mode), tmp_path, seen))
        expected = OSError
    else:
        error = OSError(5, "Input/output error") if failure == "rename fails" else KeyboardInterrupt()

        def replace(source, target):
            seen.extend(sorted(p.name for p in tmp_path.iterdir()))
            raise error

        monkeypatch.setattr(kata.course.files.os, "replace", replace)
        expected = type(error)
    with pytest.raises(expected):
        checkpoint.save(path, small_model(seed=2), SMALL)
    monkeypatch.undo()
    assert any(name.endswith(".tmp") for name in seen), f"the save should have written a temporary file: {seen}"
    assert path.read_bytes() == before, "the previous checkpoint must be untouched"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"], "no temporary file may be left behind"
    restored, _ = checkpoint.restore(REF, path)
    assert np.array_equal(get_path(restored, "embedding.W"), get_path(small_model(), "embedding.W"))


def test_save_replaces_a_previous_checkpoint(saved, tmp_path):
    path, _ = saved
    other = small_model(seed=5)
    checkpoint.save(path, other, SMALL, metrics={"test_accuracy": 1.0})
    restored, header = checkpoint.restore(REF, path)
    assert np.array_equal(get_path(restored, "output.W"), get_path(other, "output.W"))
    assert header["metrics"] == {"test_accuracy": 1.0} and "note" not in header
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


# ---------------------------------------------------------------- the shipped checkpoint

def test_the_pretrained_checkpoint_restores_and_is_accurate():
    model, header = checkpoint.restore(REF, PRETRAINED)
    assert header["config"] == {"vocab_size": 20, "embed_dim": 64, "num_heads": 4, "num_layers": 2, "ffn_dim": 256,
                                "max_seq_len": 50}
    assert sum(np.asarray(p).size for p, _ in model.get_parameters()) == 102_036
    tokens, targets, mask = REF.create_batch(REF.generate_tokenized_dataset(500, seed=12345))
    _, accuracy = REF.evaluate(model, tokens, targets, REF.CrossEntropyLoss())
    assert accuracy >= 0.995, f"the pretrained model reaches only {accuracy:.4f} on a fresh test set"


def test_the_pretrained_metrics_file_matches_the_checkpoint():
    metrics = json.loads(PRETRAINED.with_suffix(".json").read_text())
    header, _ = checkpoint.load(PRETRAINED)
    assert metrics["test_accuracy"] >= 0.995
    assert set(metrics["per_operation_accuracy"]) == {"First", "Second", "Last", "Max", "Min"}
    assert all(value >= 0.99 for value in metrics["per_operation_accuracy"].values()), metrics["per_operation_accuracy"]
    assert header["metrics"]["test_accuracy"] == metrics["test_accuracy"]
    assert header["metrics"]["best_epoch"] == metrics["best_epoch"]

"""Checkpoints: a model's parameters as named arrays in an .npz file, with a small JSON header.

    save("model.npz", model, config={...}, metrics={...})    # atomic: a temporary file, then a rename
    model, header = restore(impl, "model.npz")               # builds impl.Transformer(**header["config"])
    save("lm.npz", lm, config={..., "tie_weights": False}, kind=DECODER)  # a DecoderLM (lessons 11-14)

A decoder's header says "model": "DecoderLM" and its config has tie_weights too; a header without "model" is a
Transformer's (every checkpoint written before the decoder existed).

The arrays are named by the contract's parameter paths ('embedding.W', 'blocks.0.norm1.gamma', ...); the
header is UTF-8 JSON stored as a uint8 array, so loading never needs pickle (np.load(allow_pickle=False)).
Every way a file can be wrong raises CheckpointError with a message naming the file and what is wrong.
"""

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from ..course.contract import get_path, shapes
from ..course.files import write_atomic

FORMAT = "transformer-kata checkpoint"
VERSION = 1
HEADER = "__header__"
ZIP_MAGIC = b"PK\x03\x04"
MAX_SEQ_LEN = 100_000  # a header may not ask for a larger positional table
CONFIG_KEYS = ("vocab_size", "embed_dim", "num_heads", "num_layers", "ffn_dim", "max_seq_len")
ENCODER, DECODER = "Transformer", "DecoderLM"  # the models a checkpoint can hold: the contract's class names


def kind_of(header):
    """The model class a checkpoint's header is of: "Transformer" (no "model" entry) or "DecoderLM"."""
    return header.get("model", ENCODER)


class CheckpointError(Exception):
    """The checkpoint is missing, unreadable, foreign or does not fit the model; the message says which."""


def save(path, model, config, metrics=None, extra=None, kind=ENCODER):
    """Write model's parameters and a header {format, version, config, metrics, ...extra} to path, atomically.

    config: the Transformer(...) keyword arguments (CONFIG_KEYS); it is stored so restore can rebuild the model.
    kind: DECODER for a DecoderLM, whose config also gives tie_weights; the header then says "model": "DecoderLM".
    """
    missing = [key for key in _config_keys(kind) if key not in config]
    if missing:
        raise ValueError(f"config lacks {missing}: expected the {kind} arguments {list(_config_keys(kind))}")
    header = {"format": FORMAT, "version": VERSION, "config": {k: config[k] for k in _config_keys(kind)},
              "metrics": metrics or {}, **(extra or {})}
    if kind != ENCODER:  # an encoder's header stays as it always was
        header["model"] = kind
    arrays = {name: np.asarray(get_path(model, name)) for name in expected_shapes(config, kind)}
    arrays[HEADER] = np.frombuffer(json.dumps(header, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_atomic(path, buffer.getvalue())


def load(path):
    """(header, {name: array}) of a checkpoint file, every array checked against the header's configuration."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}" + (" (it is a folder)" if path.is_dir() else ""))
    with open(path, "rb") as stream:
        start = stream.read(4)
    if start != ZIP_MAGIC:
        kind = "empty" if not start else "a single .npy array" if start.startswith(b"\x93NUM") else "another kind of file"
        raise CheckpointError(f"{path} is not an .npz checkpoint: it is {kind} (an .npz file is a zip archive, "
                              f"written by train.py --checkpoint)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            if HEADER not in names:
                raise CheckpointError(f"{path} is an .npz archive but not a checkpoint of this project "
                                      f"(it has no {HEADER} entry; its arrays: {', '.join(names[:6]) or 'none'})")
            raw = archive[HEADER]
            arrays = {name: archive[name] for name in names if name != HEADER}
        not_arrays = [name for name, value in [(HEADER, raw), *arrays.items()] if not isinstance(value, np.ndarray)]
        if not_arrays:
            raise CheckpointError(f"{path}: the entries {not_arrays[:5]} are not .npy arrays: it is a zip archive "
                                  f"but not a checkpoint of this project")
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise CheckpointError(f"{path} is not a readable .npz checkpoint: it is truncated or corrupt "
                              f"({type(error).__name__}: {error})") from None
    except ValueError as error:  # an object array needs pickle, which is never allowed
        raise CheckpointError(f"{path} holds arrays that need pickle to load ({error}); checkpoints of this "
                              f"project never do: it is not one of them") from None
    header = _header(path, raw)
    _check_arrays(path, header["config"], arrays, kind_of(header))
    return header, arrays


def _config_keys(kind):
    return CONFIG_KEYS + (("tie_weights",) if kind == DECODER else ())


def _header(path, raw):
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise CheckpointError(f"{path}: its header is a {raw.dtype} array of shape {raw.shape}, expected UTF-8 bytes")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: its header is not valid JSON ({error})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else type(header).__name__
        raise CheckpointError(f"{path}: header format {found!r}, expected {FORMAT!r}: not a checkpoint of this project")
    if header.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {header.get('version')!r}; this code reads "
                              f"version {VERSION}")
    if kind_of(header) not in (ENCODER, DECODER):
        raise CheckpointError(f"{path}: its header's model {kind_of(header)!r} is neither {ENCODER!r} nor {DECODER!r}")
    config = header.get("config")
    if kind_of(header) == DECODER and not (isinstance(config, dict) and isinstance(config.get("tie_weights"), bool)):
        raise CheckpointError(f"{path}: a DecoderLM checkpoint's config must give tie_weights as true or false, "
                              f"got {config!r}")
    if not isinstance(config, dict) or any(not isinstance(config.get(k), int) or isinstance(config.get(k), bool)
                                           or config[k] < 1 for k in CONFIG_KEYS):
        raise CheckpointError(f"{path}: its header's config {config!r} does not give the positive integers "
                              f"{list(CONFIG_KEYS)}")
    if config["embed_dim"] % config["num_heads"]:
        raise CheckpointError(f"{path}: its header's config has embed_dim {config['embed_dim']} and num_heads "
                              f"{config['num_heads']}, but the heads must divide the embedding")
    if config["max_seq_len"] > MAX_SEQ_LEN:
        raise CheckpointError(f"{path}: its header's config has max_seq_len {config['max_seq_len']}, more than "
                              f"{MAX_SEQ_LEN} (the positional table would not fit in memory)")
    return header


def expected_shapes(config, kind=ENCODER):
    """{parameter path: shape} of a Transformer (or, kind=DECODER, a DecoderLM) built with config."""
    if kind == DECODER and config["tie_weights"]:
        kind = "DecoderLM tied"
    return shapes(kind, config["embed_dim"], config["ffn_dim"], config["vocab_size"], config["num_layers"])


def _check_arrays(path, config, arrays, kind=ENCODER):
    wanted = expected_shapes(config, kind)
    missing = [name for name in wanted if name not in arrays]
    extra = [name for name in arrays if name not in wanted]
    if missing or extra:
        raise CheckpointError(f"{path}: for the configuration in its header it lacks {missing or 'nothing'} "
                              f"and has unexpected arrays {extra or 'none'}")
    for name, shape in wanted.items():
        array = arrays[name]
        if array.shape != shape:
            raise CheckpointError(f"{path}: {name} has shape {array.shape}, expected {shape} for {config}")
        if array.dtype.kind != "f":
            raise CheckpointError(f"{path}: {name} is {array.dtype}, expected floating-point numbers")
        if not np.isfinite(array).all():
            raise CheckpointError(f"{path}: {name} holds NaN or infinite values: the run that saved it diverged")


def restore(impl, path):
    """(model, header): impl.Transformer (or impl.DecoderLM, for a decoder's checkpoint) built from the header's
    config, with the checkpoint's parameters."""
    header, arrays = load(path)
    kind = kind_of(header)
    try:
        model = getattr(impl, kind)(**header["config"])
    except (ValueError, TypeError, MemoryError) as error:
        raise CheckpointError(f"{path}: the implementation cannot build a {kind} with the configuration in its "
                              f"header, {header['config']}: {type(error).__name__}: {error}") from None
    for name, array in arrays.items():
        target = get_path(model, name)
        if target.shape != array.shape:
            raise CheckpointError(f"{path}: {name} has shape {array.shape} but the model built from its header "
                                  f"has {target.shape}")
        target[...] = array  # in place: the layers and any optimizer keep the same arrays
    return model, header

# Generated from solutions/ by `python -m kata.authoring.stubs`: your work goes where NotImplementedError is raised.
"""Lesson 00: the digit-operations task, its vocabulary, and batches of examples."""

import math

import numpy as np

from .validation import check_positive_int

PAD_TOKEN = 0
EOS_TOKEN = 1
OPERATIONS = ("First", "Second", "Last", "Max", "Min")
VOCAB = {"[PAD]": PAD_TOKEN, "[EOS]": EOS_TOKEN}
VOCAB.update({str(d): 2 + d for d in range(10)})
VOCAB.update({op: 12 + i for i, op in enumerate(OPERATIONS)})
VOCAB.update({"(": 17, ")": 18, ",": 19})
VOCAB_SIZE = len(VOCAB)
ID_TO_TOKEN = {i: tok for tok, i in VOCAB.items()}


def tokenize(text):
    """Split text on whitespace and map each token to its id.

    text: str such as "Max ( 5 3 9 )"
    returns: list[int] such as [15, 17, 7, 5, 11, 18]
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize expects a str, got {type(text).__name__}")
    unknown = [tok for tok in text.split() if tok not in VOCAB]
    if unknown:
        raise ValueError(f"unknown token {unknown[0]!r} in {text!r}; known tokens: {' '.join(VOCAB)}")
    # EXERCISE lesson00 "Tokens and ids": write tokenize here
    raise NotImplementedError('tokenize (lesson 00) is not implemented yet: reread lessons/00_task_and_data.md, section "Tokens and ids"')


def detokenize(ids):
    """Map ids back to tokens joined by single spaces, dropping [PAD].

    ids: a sequence of ints (a list, or a 1-D array)
    returns: str
    """
    ids = [int(i) for i in ids]
    unknown = [i for i in ids if i not in ID_TO_TOKEN]
    if unknown:
        raise ValueError(f"unknown token id {unknown[0]}; expected ids in [0, {VOCAB_SIZE})")
    # EXERCISE lesson00 "Tokens and ids": write detokenize here
    raise NotImplementedError('detokenize (lesson 00) is not implemented yet: reread lessons/00_task_and_data.md, section "Tokens and ids"')


def _check_num_args(num_args):
    """Return num_args as an inclusive (low, high) range of argument counts."""
    if isinstance(num_args, (tuple, list)):
        if len(num_args) != 2:
            raise ValueError(f"num_args as a range must be (low, high), got {num_args!r}")
        low = check_positive_int(num_args[0], "num_args low", minimum=2)
        high = check_positive_int(num_args[1], "num_args high", minimum=low)
        return low, high
    count = check_positive_int(num_args, "num_args", minimum=2)
    return count, count


def generate_tokenized_dataset(num_examples, num_args=3, max_value=9, seed=None):
    """Random examples "Op ( a b c )", tokenized, each with the token id of its answer.

    num_examples: int >= 0
    num_args: int >= 2, or an inclusive range (low, high) with low >= 2
    max_value: arguments are drawn uniformly from 0..max_value (1 <= max_value <= 9)
    seed: the same seed gives the same data
    returns: list of (tokens: list[int], answer: int)
    """
    num_examples = check_positive_int(num_examples, "num_examples", minimum=0)
    low, high = _check_num_args(num_args)
    max_value = check_positive_int(max_value, "max_value", minimum=1)
    if max_value > 9:
        raise ValueError(f"max_value must be at most 9 (one digit per token), got {max_value}")
    rng = np.random.default_rng(seed)
    # EXERCISE lesson00 "Generating examples": write generate_tokenized_dataset here
    raise NotImplementedError('generate_tokenized_dataset (lesson 00) is not implemented yet: reread lessons/00_task_and_data.md, section "Generating examples"')


def split_dataset(dataset, train_ratio=0.8, val_ratio=0.1, seed=None):
    """Shuffle and split into disjoint (train, val, test) lists; test takes what is left."""
    for name, ratio in (("train_ratio", train_ratio), ("val_ratio", val_ratio)):
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {ratio}")
    if train_ratio + val_ratio > 1.0 + 1e-12:
        raise ValueError(f"train_ratio + val_ratio must be at most 1, got {train_ratio + val_ratio}")
    # EXERCISE lesson00 "Splitting the data": write split_dataset here
    raise NotImplementedError('split_dataset (lesson 00) is not implemented yet: reread lessons/00_task_and_data.md, section "Splitting the data"')


def create_batch(examples):
    """Stack examples into right-padded arrays.

    examples: non-empty list of (tokens: list[int], target: int)
    returns: tokens (B, T) int64 padded with PAD_TOKEN, targets (B,) int64, mask (B, T) bool (True on real tokens)
    """
    if len(examples) == 0:
        raise ValueError("create_batch needs at least one example, got an empty list")
    # EXERCISE lesson00 "Batches, padding and masks": write create_batch here
    raise NotImplementedError('create_batch (lesson 00) is not implemented yet: reread lessons/00_task_and_data.md, section "Batches, padding and masks"')

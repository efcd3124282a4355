"""Lesson 00: the vocabulary, tokenize/detokenize, the generated task, splits and padded batches."""

from collections import Counter

import numpy as np
import pytest
from pytest_check import check

from kata.course.manifest import reread
from tests.helpers import as_array, assert_raises, assert_shape, call, pick, seed, seeded

pytestmark = pytest.mark.lesson00

SEE_TOKENS = reread("00", "Tokens and ids")
SEE_GENERATE = reread("00", "Generating examples")
SEE_SPLIT = reread("00", "Splitting the data")
SEE_BATCH = reread("00", "Batches, padding and masks")

EXPECTED_VOCAB = {"[PAD]": 0, "[EOS]": 1, **{str(d): 2 + d for d in range(10)},
                  "First": 12, "Second": 13, "Last": 14, "Max": 15, "Min": 16, "(": 17, ")": 18, ",": 19}
OPS = ("First", "Second", "Last", "Max", "Min")
OP_OF_ID = {12 + i: op for i, op in enumerate(OPS)}


def is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def answer_of(op, args):
    """The expected answer (a digit) of op applied to the argument digits."""
    return {"First": args[0], "Second": args[1], "Last": args[-1], "Max": max(args), "Min": min(args)}[op]


def example_problem(example, num_args, max_value):
    """None if example is a well-formed (tokens, answer) of the task, else what is wrong with it.

    num_args: (low, high) inclusive range of argument counts.
    """
    if not (isinstance(example, (tuple, list)) and len(example) == 2):
        return f"expected a pair (tokens, answer), got {example!r}"
    tokens, answer = example
    try:
        tokens = list(tokens)
    except TypeError:
        return f"tokens must be a list of ints, got {type(tokens).__name__}"
    if not all(is_int(t) for t in tokens):
        return f"tokens must be a list of ints, got {tokens!r}"
    if not is_int(answer):
        return f"the answer must be an int token id, got {answer!r} ({type(answer).__name__})"
    low, high = num_args
    text = str([int(t) for t in tokens])
    if not low + 3 <= len(tokens) <= high + 3:
        return (f"tokens {text} have length {len(tokens)}: expected Op ( {low}..{high} arguments ), that is "
                f"{low + 3}..{high + 3} tokens (no commas, no [EOS])")
    if tokens[0] not in OP_OF_ID or tokens[1] != 17 or tokens[-1] != 18:
        return (f"tokens {text} do not have the form Op ( a b c ): expected an operation id 12..16, then 17 "
                f"for '(', the arguments, and 18 for ')' last")
    args = tokens[2:-1]
    if not all(2 <= t <= 2 + max_value for t in args):
        return (f"tokens {text}: every argument must be a digit token 0..{max_value} (ids 2..{2 + max_value}), "
                f"with no commas (19) or [EOS] (1)")
    op = OP_OF_ID[tokens[0]]
    expected = answer_of(op, [t - 2 for t in args]) + 2
    if answer != expected:
        return (f"tokens {text} ({op} of {[t - 2 for t in args]}): expected the answer token id {expected} "
                f"(the digit {expected - 2}), got {answer!r}")
    return None


def first_problem(dataset, num_args, max_value):
    for example in dataset:
        problem = example_problem(example, num_args, max_value)
        if problem:
            return problem
    return None


def canonical(dataset):
    """The dataset as plain Python data, to compare two of them."""
    return [([int(t) for t in tokens], int(answer)) for tokens, answer in dataset]


# ---------------------------------------------------------------- tokens and ids

def test_vocabulary_and_the_spec_example(impl):
    ids = impl.tokenize("Max ( 5 3 9 )")
    with check:
        assert dict(impl.VOCAB) == EXPECTED_VOCAB, (
            f"VOCAB: expected {EXPECTED_VOCAB}, got {dict(impl.VOCAB)}; {SEE_TOKENS}")
    with check:
        assert (impl.VOCAB_SIZE, impl.PAD_TOKEN, impl.EOS_TOKEN) == (20, 0, 1), (
            f"(VOCAB_SIZE, PAD_TOKEN, EOS_TOKEN): expected (20, 0, 1), got "
            f"{(impl.VOCAB_SIZE, impl.PAD_TOKEN, impl.EOS_TOKEN)}; {SEE_TOKENS}")
    with check:
        assert tuple(impl.OPERATIONS) == OPS, f"OPERATIONS: expected {OPS}, got {impl.OPERATIONS!r}; {SEE_TOKENS}"
    with check:
        assert list(ids) == [15, 17, 7, 5, 11, 18] and all(is_int(i) for i in ids), (
            f'tokenize("Max ( 5 3 9 )"): expected [15, 17, 7, 5, 11, 18], got {ids!r}; {SEE_TOKENS}')


def test_tokenize_every_token(impl):
    text = " ".join(EXPECTED_VOCAB)
    ids = impl.tokenize(text)
    assert list(ids) == list(range(20)), (
        f"tokenize({text!r}): expected the ids 0..19 in order, got {ids!r}; {SEE_TOKENS}")


def test_tokenize_splits_on_any_whitespace(impl):
    text = "  First (\t1  2 3 )\n"
    ids, empty = impl.tokenize(text), impl.tokenize("")
    with check:
        assert list(ids) == [12, 17, 3, 4, 5, 18], (
            f"tokenize({text!r}): tokens are separated by any whitespace (str.split()), expected "
            f"[12, 17, 3, 4, 5, 18], got {ids!r}; {SEE_TOKENS}")
    with check:
        assert list(empty) == [], f'tokenize(""): expected [], got {empty!r}; {SEE_TOKENS}'


@pytest.mark.parametrize("text, bad", [("Avg ( 1 2 )", "Avg"), ("Max ( 5 10 )", "10"), ("max ( 1 2 )", "max")])
def test_tokenize_rejects_unknown_tokens(impl, text, bad):
    ids = impl.tokenize("Min ( 0 9 )")
    assert list(ids) == [16, 17, 2, 11, 18], f'tokenize("Min ( 0 9 )"): expected [16, 17, 2, 11, 18], got {ids!r}; {SEE_TOKENS}'
    assert_raises(ValueError, f"tokenize({text!r}): {bad!r} is not a token of the vocabulary", SEE_TOKENS,
                  impl.tokenize, text, naming=bad)


def test_detokenize_inverts_tokenize(impl):
    ids = [15, 17, 7, 5, 11, 18]
    text = call(impl.detokenize, ids, what="detokenize", see=SEE_TOKENS)
    with check:
        assert text == "Max ( 5 3 9 )", (
            f"detokenize({ids}): expected 'Max ( 5 3 9 )' (tokens joined by single spaces), got {text!r}; {SEE_TOKENS}")
    for sample in ["First ( 0 1 2 3 )", "Min ( 9 9 )", "[EOS] , Second"]:
        back = call(impl.detokenize, impl.tokenize(sample), what="detokenize", see=SEE_TOKENS)
        with check:
            assert back == sample, f"detokenize(tokenize({sample!r})): expected {sample!r}, got {back!r}; {SEE_TOKENS}"


def test_detokenize_drops_padding(impl):
    ids = [14, 17, 3, 4, 18, 0, 0, 0]
    text = call(impl.detokenize, ids, what="detokenize", see=SEE_TOKENS)
    with check:
        assert text == "Last ( 1 2 )", (
            f"detokenize({ids}): [PAD] (0) is dropped, expected 'Last ( 1 2 )', got {text!r}; {SEE_TOKENS}")
    row = np.array([12, 17, 8, 2, 18, 0], dtype=np.int64)
    text = call(impl.detokenize, row, what="detokenize", see=SEE_TOKENS)
    with check:
        assert text == "First ( 6 0 )", (
            f"detokenize(a padded row of a batch, int64 array {row.tolist()}): expected 'First ( 6 0 )', "
            f"got {text!r}; {SEE_TOKENS}")
    text = call(impl.detokenize, [0, 0], what="detokenize", see=SEE_TOKENS)
    with check:
        assert text == "", f"detokenize([0, 0]): only padding, expected '', got {text!r}; {SEE_TOKENS}"


# ---------------------------------------------------------------- generating examples

def test_generate_examples_have_the_task_form(impl):
    n, k = pick(300, 250, 350), seed(1)
    data = impl.generate_tokenized_dataset(n, seed=k)
    with check:
        assert len(data) == n, (
            f"generate_tokenized_dataset({n}): expected {n} examples, got {len(data)}; {SEE_GENERATE}")
    problem = first_problem(data, (3, 3), 9)
    assert problem is None, f"generate_tokenized_dataset({n}, seed={k}): {problem}; {SEE_GENERATE}"


@pytest.mark.parametrize("num_args, max_value", [((2, 6), 9), (4, 5), ((2, 2), 3)])
def test_generate_answers_are_correct(impl, num_args, max_value):
    n = pick(600, 500, 700)
    data = impl.generate_tokenized_dataset(n, num_args=num_args, max_value=max_value, seed=seed(2))
    low_high = num_args if isinstance(num_args, tuple) else (num_args, num_args)
    problem = first_problem(data, low_high, max_value)
    assert problem is None, (f"generate_tokenized_dataset({n}, num_args={num_args}, max_value={max_value}): "
                             f"{problem}; {SEE_GENERATE}")
    seen = {OP_OF_ID[int(tokens[0])] for tokens, _ in data}
    assert seen == set(OPS), f"{n} examples should use all five operations, got only {sorted(seen)}; {SEE_GENERATE}"


@pytest.mark.parametrize("num_args", [2, 5])
def test_generate_fixed_number_of_arguments(impl, num_args):
    n = pick(100, 80, 120)
    data = impl.generate_tokenized_dataset(n, num_args=num_args, seed=seed(3))
    lengths = sorted({len(tokens) for tokens, _ in data})
    assert lengths == [num_args + 3], (
        f"generate_tokenized_dataset({n}, num_args={num_args}): every example has {num_args} arguments, so "
        f"{num_args + 3} tokens; got lengths {lengths}; {SEE_GENERATE}")


def test_generate_range_of_arguments_gives_every_length(impl):
    data = impl.generate_tokenized_dataset(1000, num_args=(2, 5), seed=seed(4))
    problem = first_problem(data, (2, 5), 9)
    assert problem is None, f"generate_tokenized_dataset(1000, num_args=(2, 5)): {problem}; {SEE_GENERATE}"
    counts = Counter(len(tokens) - 3 for tokens, _ in data)
    # 4 equally likely counts: about 250 each, a standard deviation of about 14
    with check:
        assert sorted(counts) == [2, 3, 4, 5], (
            f"num_args=(2, 5) is an inclusive range: expected examples with 2, 3, 4 and 5 arguments, got "
            f"counts {dict(sorted(counts.items()))}; {SEE_GENERATE}")
    with check:
        assert all(150 <= counts[k] <= 350 for k in range(2, 6)), (
            f"num_args=(2, 5): each argument count should be about equally likely (about 250 of 1000 each), "
            f"got {dict(sorted(counts.items()))}; {SEE_GENERATE}")


@pytest.mark.parametrize("max_value", [1, 4, 9])
def test_generate_arguments_cover_zero_to_max_value(impl, max_value):
    n = pick(400, 300, 500)
    data = impl.generate_tokenized_dataset(n, max_value=max_value, seed=seed(5))
    digits = Counter(int(t) - 2 for tokens, _ in data for t in tokens[2:-1])
    assert sorted(digits) == list(range(max_value + 1)), (
        f"generate_tokenized_dataset({n}, max_value={max_value}): arguments are drawn from 0..{max_value} "
        f"inclusive, got the digits {sorted(digits)}; {SEE_GENERATE}")


def test_generate_operations_and_arguments_are_uniform(impl):
    data = impl.generate_tokenized_dataset(5000, seed=seed(6))
    ops = Counter(OP_OF_ID.get(int(tokens[0]), tokens[0]) for tokens, _ in data)
    digits = Counter(int(t) - 2 for tokens, _ in data for t in tokens[2:-1])
    # 5000 examples: each operation about 1000 times (standard deviation 28); 15000 arguments: each digit
    # about 1500 times (standard deviation 37). The bounds are 7 standard deviations or more wide.
    with check:
        assert set(ops) == set(OPS) and all(800 <= ops[op] <= 1200 for op in OPS), (
            f"generate_tokenized_dataset(5000): the five operations are equally likely (about 1000 each), got "
            f"{dict(ops)}; {SEE_GENERATE}")
    with check:
        assert set(digits) == set(range(10)) and all(1250 <= digits[d] <= 1750 for d in range(10)), (
            f"generate_tokenized_dataset(5000): arguments are uniform on 0..9 (about 1500 of each digit), got "
            f"{dict(sorted(digits.items()))}; {SEE_GENERATE}")


def test_generate_same_seed_same_data(impl):
    n, k, k_other = pick(50, 40, 60), seed(7), seed(8)
    first = impl.generate_tokenized_dataset(n, num_args=(2, 4), seed=k)
    np.random.seed(123)  # the global random state must not matter when a seed is given
    second = impl.generate_tokenized_dataset(n, num_args=(2, 4), seed=k)
    other = impl.generate_tokenized_dataset(n, num_args=(2, 4), seed=k_other)
    with check:
        assert canonical(first) == canonical(second), (
            f"generate_tokenized_dataset with seed={k} twice gave different data; the same seed must give the "
            f"same data (use np.random.default_rng(seed)); {SEE_GENERATE}")
    with check:
        assert canonical(first) != canonical(other), (
            f"generate_tokenized_dataset with seed={k} and seed={k_other} gave the same data; the seed must be "
            f"used; "
            f"{SEE_GENERATE}")
    empty = impl.generate_tokenized_dataset(0, seed=k)
    with check:
        assert len(empty) == 0, f"generate_tokenized_dataset(0): expected no examples, got {len(empty)}; {SEE_GENERATE}"


# ---------------------------------------------------------------- splitting

def numbered_dataset(n):
    """n distinct examples; example k has the target k, so every example can be told apart."""
    return [([12, 17, 2 + k % 10, 2 + k // 10 % 10, 18], k) for k in range(n)]


def targets_of(part):
    return [int(example[1]) for example in part]


@pytest.mark.parametrize("n", [100, 1000])
def test_split_sizes_are_80_10_10(impl, n):
    train, val, test = call(impl.split_dataset, numbered_dataset(n), seed=seed(0), what="split_dataset",
                            see=SEE_SPLIT)
    sizes = (len(train), len(val), len(test))
    expected = (n * 8 // 10, n // 10, n // 10)
    assert sizes == expected, (
        f"split_dataset of {n} examples with the default ratios 0.8 / 0.1: expected sizes {expected}, got "
        f"{sizes}; {SEE_SPLIT}")


@pytest.mark.parametrize("n, train_ratio, val_ratio", [(50, 0.6, 0.2), (20, 0.7, 0.15), (40, 0.5, 0.0)])
def test_split_custom_ratios(impl, n, train_ratio, val_ratio):
    train, val, test = call(impl.split_dataset, numbered_dataset(n), train_ratio=train_ratio, val_ratio=val_ratio,
                            seed=seed(1), what="split_dataset", see=SEE_SPLIT)
    sizes = (len(train), len(val), len(test))
    wanted = (n * train_ratio, n * val_ratio)
    assert sum(sizes) == n and abs(sizes[0] - wanted[0]) < 1 and abs(sizes[1] - wanted[1]) < 1, (
        f"split_dataset of {n} examples, train_ratio={train_ratio}, val_ratio={val_ratio}: expected about "
        f"{wanted[0]:g} / {wanted[1]:g} / the rest, got sizes {sizes}; {SEE_SPLIT}")


@pytest.mark.parametrize("n, train_ratio, val_ratio, expected", [
    (7, 0.8, 0.1, (5, 0, 2)), (19, 0.7, 0.15, (13, 2, 4)), (100, 0.29, 0.13, (29, 13, 58))])
def test_split_sizes_are_floored(impl, n, train_ratio, val_ratio, expected):
    # issue 13: n * ratio not whole (5.6, 0.7; 13.3, 2.85), or whole but 28.999999999999996 in floating point
    train, val, test = impl.split_dataset(numbered_dataset(n), train_ratio=train_ratio, val_ratio=val_ratio,
                                          seed=seed(6))
    sizes = (len(train), len(val), len(test))
    assert sizes == expected, (
        f"split_dataset of {n} examples, train_ratio={train_ratio}, val_ratio={val_ratio}: n * train_ratio is "
        f"{n * train_ratio!r} and n * val_ratio {n * val_ratio!r} in floating point; train gets floor(n * "
        f"train_ratio) and val floor(n * val_ratio), floored (not rounded) after adding 1e-9, and test the rest: "
        f"expected sizes {expected}, got {sizes}; {SEE_SPLIT}")


def test_split_is_disjoint_and_covers_everything(impl):
    n = pick(200, 150, 240)
    dataset = numbered_dataset(n)
    parts = call(impl.split_dataset, dataset, seed=seed(2), what="split_dataset", see=SEE_SPLIT)
    everything = [k for part in parts for k in targets_of(part)]
    with check:
        assert len(everything) == len(set(everything)), (
            f"split_dataset: train, val and test must be disjoint, but {len(everything) - len(set(everything))} "
            f"examples appear twice; {SEE_SPLIT}")
    with check:
        assert set(everything) == set(range(n)), (
            f"split_dataset of {n} examples: train + val + test must hold every example, "
            f"{n - len(set(everything))} are missing; {SEE_SPLIT}")
    wrong = [example for part in parts for example in part
             if canonical([example]) != canonical([dataset[int(example[1])]])]
    with check:
        assert not wrong, f"split_dataset must return the examples themselves, unchanged; got {wrong[0]!r}; {SEE_SPLIT}"


def test_split_is_shuffled(impl):
    n = pick(100, 90, 120)
    n_train, n_test = n * 8 // 10, n // 10  # the sizes of the default ratios (test_split_sizes_are_80_10_10)
    train, val, test = call(impl.split_dataset, numbered_dataset(n), seed=seed(3), what="split_dataset",
                            see=SEE_SPLIT)
    with check:
        assert set(targets_of(train)) != set(range(n_train)), (
            f"split_dataset: train holds exactly the first {n_train} examples; shuffle before splitting "
            f"(np.random.default_rng(seed).permutation); {SEE_SPLIT}")
    with check:
        assert set(targets_of(test)) != set(range(n - n_test, n)), (
            f"split_dataset: test holds exactly the last {n_test} examples; shuffle before splitting; {SEE_SPLIT}")


def test_split_same_seed_same_split(impl):
    n, k, k_other = pick(60, 50, 70), seed(4), seed(5)
    dataset = numbered_dataset(n)
    first = [targets_of(part) for part in call(impl.split_dataset, dataset, seed=k,
                                               what="split_dataset", see=SEE_SPLIT)]
    np.random.seed(321)  # the global random state must not matter when a seed is given
    second = [targets_of(part) for part in call(impl.split_dataset, dataset, seed=k,
                                                what="split_dataset", see=SEE_SPLIT)]
    other = [targets_of(part) for part in call(impl.split_dataset, dataset, seed=k_other,
                                               what="split_dataset", see=SEE_SPLIT)]
    with check:
        assert first == second, f"split_dataset with seed={k} twice gave different splits; {SEE_SPLIT}"
    with check:
        assert first != other, (f"split_dataset with seed={k} and seed={k_other} gave the same split; the seed must "
                                f"be used; {SEE_SPLIT}")
    with check:
        assert targets_of(dataset) == list(range(n)), f"split_dataset must not reorder the caller's list; {SEE_SPLIT}"


# ---------------------------------------------------------------- batches

EXAMPLES = [([15, 17, 7, 5, 11, 18], 11),  # Max ( 5 3 9 )
            ([12, 17, 3, 4, 18], 3),  # First ( 1 2 )
            ([13, 17, 2, 9, 4, 6, 18], 9)]  # Second ( 0 7 2 4 )


def test_create_batch_by_hand(impl):
    tokens, targets, mask = call(impl.create_batch, EXAMPLES, what="create_batch", see=SEE_BATCH)
    expected_tokens = np.array([[15, 17, 7, 5, 11, 18, 0],
                                [12, 17, 3, 4, 18, 0, 0],
                                [13, 17, 2, 9, 4, 6, 18]])
    expected_mask = expected_tokens != 0
    tokens, targets, mask = (as_array(tokens, "create_batch tokens", SEE_BATCH),
                             as_array(targets, "create_batch targets", SEE_BATCH),
                             as_array(mask, "create_batch mask", SEE_BATCH))
    with check:
        assert tokens.shape == (3, 7) and np.array_equal(tokens, expected_tokens), (
            f"create_batch tokens: expected the examples right-padded with PAD (0) to the longest (7):\n"
            f"{expected_tokens}\ngot\n{tokens}; {SEE_BATCH}")
    with check:
        assert np.array_equal(targets, [11, 3, 9]), (
            f"create_batch targets: expected [11 3 9], got {targets}; {SEE_BATCH}")
    with check:
        assert mask.shape == (3, 7) and np.array_equal(mask, expected_mask), (
            f"create_batch mask: expected True on real tokens and False on padding:\n{expected_mask}\n"
            f"got\n{mask}; {SEE_BATCH}")


def test_create_batch_dtypes(impl):
    tokens, targets, mask = call(impl.create_batch, EXAMPLES[:2], what="create_batch", see=SEE_BATCH)
    for value, what, dtype in ((tokens, "tokens", np.int64), (targets, "targets", np.int64), (mask, "mask", bool)):
        value = as_array(value, f"create_batch {what}", SEE_BATCH)
        with check:
            assert value.dtype == dtype, (
                f"create_batch {what}: expected dtype {np.dtype(dtype)}, got {value.dtype}; {SEE_BATCH}")


@pytest.mark.parametrize("batch_size, num_args", [(1, 3), (4, 3), (16, (2, 6))])
def test_create_batch_shapes_and_padding(impl, batch_size, num_args):
    examples = _examples(batch_size, num_args)
    tokens, targets, mask = call(impl.create_batch, examples, what="create_batch", see=SEE_BATCH)
    lengths = [len(seq) for seq, _ in examples]
    B, T = batch_size, max(lengths)
    assert_shape(tokens, (B, T), f"create_batch tokens for {B} examples of lengths {lengths}", SEE_BATCH)
    assert_shape(targets, (B,), f"create_batch targets for {B} examples", SEE_BATCH)
    assert_shape(mask, (B, T), f"create_batch mask for {B} examples of lengths {lengths}", SEE_BATCH)
    for b, (seq, target) in enumerate(examples):
        with check:
            assert (tokens[b, :len(seq)].tolist() == seq and not tokens[b, len(seq):].any()
                    and int(targets[b]) == target), (
                f"create_batch row {b}: expected tokens {seq + [0] * (T - len(seq))} and target {target}, got "
                f"{tokens[b].tolist()} and {targets[b]}; {SEE_BATCH}")
        with check:
            assert mask[b].tolist() == [t < len(seq) for t in range(T)], (
                f"create_batch mask row {b} (an example of {len(seq)} tokens padded to {T}): expected "
                f"{[t < len(seq) for t in range(T)]}, got {mask[b].tolist()}; {SEE_BATCH}")


def _examples(batch_size, num_args):
    """Well-formed examples built here (not by the implementation under test)."""
    rng = seeded(batch_size)
    low, high = num_args if isinstance(num_args, tuple) else (num_args, num_args)
    result = []
    for _ in range(batch_size):
        op = int(rng.integers(12, 17))
        args = [int(a) for a in rng.integers(0, 10, size=int(rng.integers(low, high + 1)))]
        result.append(([op, 17] + [a + 2 for a in args] + [18], answer_of(OP_OF_ID[op], args) + 2))
    return result

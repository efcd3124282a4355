"""Lesson 15: the implementation's own decoder, assembled, must learn to sort digits and then write sorted answers.

The test measures every number itself: the examples are the reference's (its lesson 12 code, through expect(): read
back from tests/recorded/ in the students' edition), the batches are the test's own picks of them, and each loss it
judges is computed by the test, with a cross-entropy of its own over the answer's positions, from a private copy of
the logits of the model's own forward. The answers generate writes are checked against the sorted digits of each
prompt, which the test works out itself, and against the model: each token greedy decoding writes must be the one
the model's own forward ranks first. What lm_train_step and exact_match_accuracy report is only compared with those
numbers.
"""

import math

import numpy as np
import pytest
from pytest_check import check

from kata.course.manifest import reread
from tests.helpers import agrees, call, number, seed, seeded

pytestmark = pytest.mark.lesson15

SEE = reread("15", "Training your own decoder")
STEPS, BATCH, SEED, MEASURED, LR = 300, 32, 0, 20, 2e-3  # MEASURED: the last steps whose loss the test measures
DIGITS, TRAIN, HELD_OUT = (2, 4), 3000, 300
EXTRA = 2  # generate may write this many tokens past the right answer's length: a model that never stops shows it


def examples(data_seed):
    """compute for expect(): the reference's sorting examples (2 to 4 digits) as the teacher-forcing batch of the
    3,000 training examples, the 300 held-out prompts, and the token ids of the digits and of EOS (so that the test
    can sort the prompts' digits itself)."""
    def compute(ref):
        data = ref.generate_sorting_dataset(TRAIN + HELD_OUT, DIGITS, seed=data_seed)
        return {"train": ref.create_lm_batch(data[:TRAIN]), "held_out": [list(p) for p, _ in data[TRAIN:]],
                "digits": [ref.VOCAB[str(d)] for d in range(10)], "eos": int(ref.EOS_TOKEN), "pad": int(ref.PAD_TOKEN)}
    return compute


def rows(batch, picked):
    """The examples picked of a teacher-forcing batch (inputs, targets, loss_mask, mask), padded only as far as
    the longest of them."""
    width = int(batch[3][picked].sum(axis=1).max())
    return tuple(np.array(part[picked, :width]) for part in batch)


def cross_entropy(logits, targets, counted):
    """The test's own loss: the mean over the counted positions of log(sum(exp(logits))) - logits[target]."""
    logits, targets = logits[counted], targets[counted]
    largest = np.max(logits, axis=1)
    log_sum_exp = largest + np.log(np.sum(np.exp(logits - largest[:, None]), axis=1))
    return float(np.mean(log_sum_exp - logits[np.arange(len(targets)), targets]))


def logits_of(model, inputs, mask, what):
    """A private float64 copy of model.forward's logits, checked to be (B, T, 20)."""
    logits = call(model.forward, inputs.copy(), mask.copy(), what="DecoderLM.forward", see=SEE)
    logits = np.array(logits, dtype=np.float64)
    assert logits.shape == (*inputs.shape, 20), (
        f"DecoderLM.forward on {what} (tokens of shape {inputs.shape}) returned logits of shape {logits.shape}, "
        f"expected {(*inputs.shape, 20)}; {SEE}")
    return logits


def sorted_answer(prompt, data):
    """The right answer to a prompt "( d d ... )", worked out by the test: its digits in order, then EOS."""
    value = {token: d for d, token in enumerate(data["digits"])}
    return [data["digits"][d] for d in sorted(value[token] for token in prompt[1:-1])] + [data["eos"]]


def follows_the_model(model, prompts, written, data):
    """The indices of the prompts whose written tokens are not what the model's own forward ranks first: the test
    runs each prompt + what was written through model.forward, in one padded batch, and reads the logits before
    each written token (a written token must have the largest logit there, round-off aside)."""
    lengths = [len(p) + len(w) for p, w in zip(prompts, written)]
    inputs = np.full((len(prompts), max(lengths)), data["pad"], dtype=np.int64)
    for row, (prompt, tokens) in enumerate(zip(prompts, written)):
        inputs[row, :lengths[row]] = prompt + tokens
    mask = np.arange(inputs.shape[1])[None, :] < np.array(lengths)[:, None]
    logits = logits_of(model, inputs, mask, "the held-out prompts followed by what generate wrote")
    astray = []
    for row, (prompt, tokens) in enumerate(zip(prompts, written)):
        before = logits[row, len(prompt) - 1: len(prompt) - 1 + len(tokens)]  # the logits that chose each token
        chosen = before[np.arange(len(tokens)), tokens]
        if np.any(chosen < before.max(axis=1) - 1e-6 * (1 + np.abs(before).max(axis=1))):
            astray.append(row)
    return astray


def as_token_lists(written, prompts, what):
    """generate's answer as a list of int lists, one per prompt (the test fails when it is not that)."""
    assert isinstance(written, (list, tuple)) and len(written) == len(prompts), (
        f"{what} returned {type(written).__name__} "
        f"{'of length ' + str(len(written)) if hasattr(written, '__len__') else ''}, expected a list of "
        f"{len(prompts)} token lists, one per prompt (lesson 13); {SEE}")
    try:
        return [[int(t) for t in tokens] for tokens in written]
    except (TypeError, ValueError) as error:
        raise AssertionError(f"{what} returned something other than lists of token ids ({error}); {SEE}") from None


def test_own_decoder_learns_to_sort_and_writes_sorted_answers(impl, expect):
    """Train the default DecoderLM with its own Adam, loss and lm_train_step; the loss the test measures must fall
    clearly, and greedy generation must write exactly right answers to most held-out prompts."""
    data = expect(examples(seed(SEED)))
    train = data["train"]
    np.random.seed(seed(SEED))  # the initial weights, for implementations that draw them from numpy's generator
    model = impl.DecoderLM()
    optimizer = impl.Adam(model.get_parameters(), learning_rate=LR)
    loss_fn = impl.SequenceCrossEntropyLoss()
    rng = seeded(SEED)
    measured, reported = {}, {}
    for step in range(STEPS):
        inputs, targets, loss_mask, mask = rows(train, rng.choice(len(train[0]), BATCH, replace=False))
        if step == 0 or step >= STEPS - MEASURED:
            logits = logits_of(model, inputs, mask, f"the batch of training step {step}")
            measured[step] = cross_entropy(logits, targets, loss_mask)
        loss = call(impl.lm_train_step, model, inputs.copy(), targets.copy(), loss_mask.copy(), loss_fn, optimizer,
                    mask.copy(), what="lm_train_step", see=SEE)
        assert number(loss) is not None and math.isfinite(number(loss)), (
            f"lm_train_step reported the loss {loss!r} at step {step}: an overflow in the loss or a gradient "
            f"blowing up (check lessons 11 and 12); {SEE}")
        reported[step] = loss
    start, end = measured[0], float(np.mean([measured[s] for s in range(STEPS - MEASURED, STEPS)]))
    with check:
        assert 2.0 < start < 6.0, (
            f"the loss of the untrained decoder on the first batch, computed by the test from its logits over the "
            f"answers' positions, is {start:.3f}; an untrained model over 20 tokens should give about ln 20 = "
            f"{math.log(20):.3f} (the reference: 3.5 to 4.2); {SEE}")
    with check:
        assert end < 0.5 and end < start / 4, (
            f"after {STEPS - MEASURED} Adam steps the mean loss of the last {MEASURED} batches, computed by the test "
            f"from the model's logits just before each step, is {end:.3f} (it started at {start:.3f}); the "
            f"reference reaches 0.03 to 0.10. If it hardly moved, the gradients or the optimizer are wrong (lessons "
            f"11, 12 and 08); {SEE}")
    wrong = [step for step, loss in measured.items() if not agrees(reported[step], loss)]
    if wrong:
        with check:
            assert not wrong, (
                f"lm_train_step reported the loss {reported[wrong[0]]!r} at step {wrong[0]}, but the batch's loss "
                f"before the step, computed by the test from DecoderLM.forward's logits over the answers' "
                f"positions, is {measured[wrong[0]]:.6f}: lm_train_step must return the loss of the batch it trains "
                f"on, before the optimizer's step ({len(wrong)} of the {len(measured)} steps measured disagree; "
                f"lesson 12); {SEE}")

    prompts = data["held_out"]
    answers = [sorted_answer(p, data) for p in prompts]
    limit = DIGITS[1] + 1 + EXTRA
    written = as_token_lists(call(impl.generate, model, [list(p) for p in prompts], limit, what="generate", see=SEE),
                             prompts, "generate(model, prompts, max_new_tokens)")
    right = float(np.mean([w == a for w, a in zip(written, answers)]))
    astray = follows_the_model(model, prompts, written, data)
    with check:
        assert not astray, (
            f"generate (greedy, temperature 0) wrote {written[astray[0]]} after the prompt {prompts[astray[0]]}, but "
            f"the model's own forward, run by the test on the prompt and those tokens, does not rank each of them "
            f"first ({len(astray)} of {len(prompts)} answers): greedy decoding must write the argmax of the logits "
            f"at the last position, one token at a time (lesson 13). If generate does that, the model's logits at a "
            f"position change when later tokens are added: it looks ahead, past the causal mask (lesson 11); {SEE}")
    with check:
        assert right >= 0.6, (
            f"greedy generation wrote exactly the sorted digits and EOS for {right:.3f} of the {len(prompts)} "
            f"held-out prompts (the test sorts each prompt itself; the reference: 0.86 to 0.99). For example "
            f"{prompts[0]} -> {written[0]}, expected {answers[0]}. If the loss fell but the answers are wrong, "
            f"look at the causal mask (lesson 11: a model that sees the next token learns to copy it, and cannot "
            f"write) and at the generation loop (lesson 13: EOS, the position read); {SEE}")
    cached = as_token_lists(call(impl.generate, model, [list(p) for p in prompts], limit, use_cache=True,
                                 what="generate(..., use_cache=True)", see=SEE),
                            prompts, "generate(model, prompts, max_new_tokens, use_cache=True)")
    differ = [k for k, (a, b) in enumerate(zip(written, cached)) if a != b]
    with check:
        assert len(differ) <= len(prompts) // 100, (
            f"generate with use_cache=True wrote {cached[differ[0] if differ else 0]} after the prompt "
            f"{prompts[differ[0] if differ else 0]}, but without the cache {written[differ[0] if differ else 0]} "
            f"({len(differ)} of {len(prompts)} answers differ): the KV cache must give the logits of the whole "
            f"prefix (lesson 14); {SEE}")
    exact = call(impl.exact_match_accuracy, model, [(list(p), list(a)) for p, a in zip(prompts, answers)],
                 what="exact_match_accuracy", see=SEE)
    with check:
        assert agrees(exact, right) or abs((number(exact) or -1.0) - right) <= 1.5 / len(prompts), (
            f"exact_match_accuracy on the {len(prompts)} held-out examples reported {exact!r}, but greedy generation "
            f"wrote exactly right answers to {right:.4f} of them, as the test counted (lesson 12); {SEE}")

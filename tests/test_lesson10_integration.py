"""Lesson 10: the implementation's own components, assembled, must learn the digit-operations task.

The test measures every number itself: the examples are the reference's (its lesson 00 code, through expect(): read
back from tests/recorded/ in the students' edition), the batches are the test's own picks of them, and each loss
and accuracy it judges is computed by the test, with a cross-entropy of its own, from a private copy of the logits
of the model's own forward. What train_step and evaluate report is only compared with those numbers.
"""

import math

import numpy as np
import pytest
from pytest_check import check

from kata.course.manifest import reread
from tests.helpers import agrees, assert_shape, call, number, seed, seeded

pytestmark = pytest.mark.lesson10

SEE = reread("10", "Training your own model")
STEPS, BATCH, SEED, MEASURED = 300, 64, 0, 20  # MEASURED: the last steps whose loss the test measures itself


def cross_entropy(logits, targets):
    """The test's own loss: the batch's mean of log(sum(exp(logits))) - logits[target], with the log-sum-exp taken
    around each row's largest logit (exact, and no overflow)."""
    largest = np.max(logits, axis=1)
    log_sum_exp = largest + np.log(np.sum(np.exp(logits - largest[:, None]), axis=1))
    return float(np.mean(log_sum_exp - logits[np.arange(len(targets)), targets]))


def measure(model, tokens, targets, mask, what):
    """(loss, accuracy) of the model's logits on a batch, computed by the test from a private copy of them."""
    logits = call(model.forward, tokens.copy(), None if mask is None else mask.copy(), what="Transformer.forward",
                  see=SEE)
    assert_shape(logits, (len(targets), 20), f"Transformer.forward on {what}", SEE)
    logits = np.array(logits, dtype=np.float64)  # the test's own copy
    return cross_entropy(logits, targets), float(np.mean(np.argmax(logits, axis=1) == targets))


def examples(data_seed):
    """compute for expect(): 3000 examples of the reference's data set, as the batches (tokens, targets, mask) of
    the first 2500 (for training) and of the last 500 (held out)."""
    def compute(ref):
        data = ref.generate_tokenized_dataset(3000, seed=data_seed)
        return {"train": ref.create_batch(data[:2500]), "held_out": ref.create_batch(data[2500:])}
    return compute


def rows(batch, picked):
    """The examples picked of a batch (tokens, targets, mask), padded only as far as the longest of them."""
    tokens, targets, mask = batch
    width = int(mask[picked].sum(axis=1).max())
    return tokens[picked, :width], targets[picked], mask[picked, :width]


def test_own_model_learns_digit_operations(impl, expect):
    """Train the default Transformer with its own Adam, loss and train_step; the loss must fall from ln 20."""
    data = expect(examples(seed(SEED)))
    train = data["train"]
    model = impl.Transformer()
    optimizer = impl.Adam(model.get_parameters(), learning_rate=1e-3)
    loss_fn = impl.CrossEntropyLoss()
    rng = seeded(SEED)
    measured, reported = {}, {}  # step: (loss, accuracy)
    for step in range(STEPS):
        tokens, targets, mask = rows(train, rng.choice(len(train[1]), BATCH, replace=False))
        if step == 0 or step >= STEPS - MEASURED:
            measured[step] = measure(model, tokens, targets, mask, f"the batch of training step {step}")
        loss, accuracy = call(impl.train_step, model, tokens.copy(), targets.copy(), loss_fn, optimizer,
                              mask.copy(), what="train_step", see=SEE)
        assert number(loss) is not None and math.isfinite(number(loss)), (
            f"train_step reported the loss {loss!r} at step {step}: an overflow in the loss or a gradient blowing up "
            f"(check lessons 06 to 08); {SEE}")
        reported[step] = (loss, accuracy)
    start, end = measured[0][0], float(np.mean([measured[s][0] for s in range(STEPS - MEASURED, STEPS)]))
    with check:
        assert 2.0 < start < 6.0, (f"the loss of the untrained model on the first batch, computed by the test from "
                                   f"its logits, is {start:.3f}; an untrained model over 20 tokens should give about "
                                   f"ln 20 = {math.log(20):.3f}; {SEE}")
    with check:
        assert end < 0.3, (f"after {STEPS - MEASURED} Adam steps the mean loss of the last {MEASURED} batches, "
                           f"computed by the test from the model's logits just before each step, is {end:.3f} (it "
                           f"started at {start:.3f}); the reference reaches about 0.05. If it hardly moved, the "
                           f"gradients or the optimizer are wrong (lessons 07 and 08); {SEE}")
    wrong = [step for step, (loss, accuracy) in measured.items()
             if not (agrees(reported[step][0], loss) and agrees(reported[step][1], accuracy))]
    if wrong:  # the first step whose report disagrees
        step, got, (loss, accuracy) = wrong[0], reported[wrong[0]], measured[wrong[0]]
        with check:
            assert not wrong, (
                f"train_step reported (loss, accuracy) = ({got[0]!r}, {got[1]!r}) at step {step}, but the batch's "
                f"loss and accuracy before the step, computed by the test from model.forward's logits, are "
                f"({loss:.6f}, {accuracy:.4f}): train_step must return those of the batch it trains on, before "
                f"the optimizer's step ({len(wrong)} of the {len(measured)} steps measured disagree; lesson 08); {SEE}")
    tokens, targets, _ = data["held_out"]
    held_loss, held_accuracy = measure(model, tokens, targets, None, "the 500 held-out examples")
    with check:
        assert held_accuracy >= 0.9, (f"accuracy on 500 held-out examples, computed by the test from the model's "
                                      f"logits, is {held_accuracy:.3f} (chance is about 0.1, the reference reaches "
                                      f"about 0.99; held-out loss {held_loss:.3f}); {SEE}")
    got = call(impl.evaluate, model, tokens.copy(), targets.copy(), loss_fn, what="evaluate", see=SEE)
    with check:
        assert isinstance(got, tuple) and len(got) == 2 and agrees(got[0], held_loss) and agrees(got[1],
                                                                                                  held_accuracy), (
            f"evaluate on the 500 held-out examples reported {got!r}, but the loss and accuracy computed by the test "
            f"from model.forward's logits are ({held_loss:.6f}, {held_accuracy:.4f}) (lesson 08); {SEE}")

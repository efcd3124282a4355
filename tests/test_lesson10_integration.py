"""Lesson 10: the implementation's own components, assembled, must learn the digit-operations task."""

import math

import numpy as np
import pytest
from pytest_check import check

from kata.course.manifest import reread

pytestmark = pytest.mark.lesson10

SEE = reread("10", "Training your own model")
STEPS, BATCH, SEED = 300, 64, 0


def test_own_model_learns_digit_operations(impl):
    """Train the default Transformer with its own Adam, loss and train_step; the loss must fall from ln 20."""
    data = impl.generate_tokenized_dataset(3000, seed=SEED)
    train, held_out = data[:2500], data[2500:]
    model = impl.Transformer()
    optimizer = impl.Adam(model.get_parameters(), learning_rate=1e-3)
    loss_fn = impl.CrossEntropyLoss()
    rng = np.random.default_rng(SEED)
    losses = []
    for step in range(STEPS):
        picked = rng.choice(len(train), BATCH, replace=False)
        tokens, targets, mask = impl.create_batch([train[i] for i in picked])
        loss, accuracy = impl.train_step(model, tokens, targets, loss_fn, optimizer, mask)
        assert math.isfinite(loss), (f"the training loss became {loss} at step {step}: an overflow in the loss or "
                                     f"a gradient blowing up (check lessons 06 to 08); {SEE}")
        losses.append(float(loss))
    tokens, targets, _ = impl.create_batch(held_out)
    held_loss, held_accuracy = impl.evaluate(model, tokens, targets, loss_fn)
    start, end = losses[0], float(np.mean(losses[-20:]))
    with check:
        assert 2.0 < start < 6.0, (f"the first loss was {start:.3f}; an untrained model over 20 tokens should give "
                                   f"about ln 20 = {math.log(20):.3f}; {SEE}")
    with check:
        assert end < 0.3, (f"after {STEPS} Adam steps the mean loss of the last 20 steps is {end:.3f} (it started at "
                           f"{start:.3f}); the reference reaches about 0.05. If it hardly moved, the gradients or the "
                           f"optimizer are wrong (lessons 07 and 08); {SEE}")
    with check:
        assert held_accuracy >= 0.9, (f"accuracy on 500 held-out examples is {held_accuracy:.3f} (chance is about "
                                      f"0.1, the reference reaches about 0.99; held-out loss {held_loss:.3f}); {SEE}")

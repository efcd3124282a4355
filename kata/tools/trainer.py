"""The default training recipe, run on any implementation through the contract alone.

train.py, the benchmark and the notebooks all train with this one loop.
"""

import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Recipe:
    batch_size: int = 64  # small batches: many cheap steps beat few large ones on this task
    learning_rate: float = 2e-3  # the peak of the schedule
    epochs: int = 5
    warmup_steps: int = 50  # Post-LN blocks are unstable at full learning rate from a random start
    min_lr_ratio: float = 0.05  # the cosine ends at 5% of the peak


def batches(examples, batch_size, rng, impl):
    """Shuffled (tokens, targets, mask) batches covering every example once."""
    order = rng.permutation(len(examples))
    for start in range(0, len(examples), batch_size):
        yield impl.create_batch([examples[i] for i in order[start:start + batch_size]])


def train(impl, model, train_set, recipe=Recipe(), seed=0, on_step=None, on_epoch_end=None):
    """Train model in place with impl's Adam, CrossEntropyLoss, train_step and warmup_cosine_lr.

    on_step(step, loss, accuracy, seconds) is called after every step; seconds is that step's time.
    on_epoch_end(epoch) is called after each epoch (counted from 0); returning True stops training there.
    returns: the list of (loss, accuracy) of every step
    """
    rng = np.random.default_rng(seed)
    optimizer = impl.Adam(model.get_parameters(), learning_rate=recipe.learning_rate)
    loss_fn = impl.CrossEntropyLoss()
    steps_per_epoch = -(-len(train_set) // recipe.batch_size)
    total = recipe.epochs * steps_per_epoch
    warmup = min(recipe.warmup_steps, total // 4)  # a short run still spends most of its steps at full rate
    history = []
    for epoch in range(recipe.epochs):
        for tokens, targets, mask in batches(train_set, recipe.batch_size, rng, impl):
            step = len(history)
            optimizer.learning_rate = impl.warmup_cosine_lr(step, recipe.learning_rate, warmup, total,
                                                            recipe.learning_rate * recipe.min_lr_ratio)
            start = time.perf_counter()
            loss, accuracy = impl.train_step(model, tokens, targets, loss_fn, optimizer, mask)
            seconds = time.perf_counter() - start
            history.append((loss, accuracy))
            if on_step is not None:
                on_step(step, loss, accuracy, seconds)
        if on_epoch_end is not None and on_epoch_end(epoch):
            break
    return history

# Generated from solutions/ by `python -m kata.authoring.stubs`: your work goes where NotImplementedError is raised.
"""Lesson 08: one step of training, and evaluation without changing the model."""

import numpy as np


def train_step(model, tokens, targets, loss_fn, optimizer, mask=None):
    """Zero the gradients, forward, loss, backward, one optimizer step.

    tokens: (B, T) int, targets: (B,) int, mask: (B, T) bool or None
    returns: (loss: float, accuracy: float in [0, 1]) of this batch before the step
    """
    # EXERCISE lesson08 "One training step": write train_step here
    raise NotImplementedError('train_step (lesson 08) is not implemented yet: reread lessons/08_training_loop.md, section "One training step"')


def evaluate(model, tokens, targets, loss_fn, batch_size=256):
    """Loss and accuracy over all examples, in batches; parameters are not changed.

    tokens: (N, T) int, targets: (N,) int
    returns: (mean loss over the N examples, accuracy in [0, 1])
    """
    if len(tokens) == 0:
        raise ValueError("evaluate needs at least one example")
    # EXERCISE lesson08 "Evaluation": write evaluate here
    raise NotImplementedError('evaluate (lesson 08) is not implemented yet: reread lessons/08_training_loop.md, section "Evaluation"')

# Generated from solutions/ by `python -m kata.authoring.stubs`: your work goes where NotImplementedError is raised.
"""Lesson 09: tools to watch and steer training."""

import math

import numpy as np

from .data import OPERATIONS, VOCAB, create_batch


def per_operation_accuracy(model, dataset):
    """Accuracy of the model on the examples of each operation.

    dataset: list of (tokens, target) examples, each starting with its operation's token
    returns: {op: accuracy in [0, 1]} for every op in OPERATIONS (nan where an op has no example)
    """
    # EXERCISE lesson09 "Per-operation accuracy": write per_operation_accuracy here
    raise NotImplementedError('per_operation_accuracy (lesson 09) is not implemented yet: reread lessons/09_training_dynamics.md, section "Per-operation accuracy"')


def attention_entropy(weights):
    """Entropy in nats of each attention row: -sum(w log w) over the last axis, 0 log 0 taken as 0.

    weights: (..., T_k) -> (...)
    """
    # EXERCISE lesson09 "Attention entropy": write attention_entropy here
    raise NotImplementedError('attention_entropy (lesson 09) is not implemented yet: reread lessons/09_training_dynamics.md, section "Attention entropy"')


def clip_grad_norm(parameters, max_norm):
    """Scale every gradient in place so that their global L2 norm is at most max_norm.

    parameters: list of (param, grad) pairs
    returns: the global norm before clipping
    """
    if max_norm <= 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}")
    # EXERCISE lesson09 "Gradient clipping": write clip_grad_norm here
    raise NotImplementedError('clip_grad_norm (lesson 09) is not implemented yet: reread lessons/09_training_dynamics.md, section "Gradient clipping"')


def warmup_cosine_lr(step, base_lr, warmup_steps, total_steps, min_lr=0.0):
    """The learning rate at a step (counting from 0) of linear warm-up then cosine decay.

    Steps 0..warmup_steps-1 rise linearly to base_lr (step 0 gives base_lr / warmup_steps); the cosine
    then falls from base_lr to min_lr, reached at total_steps and kept after.
    """
    if step < 0 or warmup_steps < 0 or total_steps < warmup_steps:
        raise ValueError(f"need 0 <= step and 0 <= warmup_steps <= total_steps, got step={step}, "
                         f"warmup_steps={warmup_steps}, total_steps={total_steps}")
    # EXERCISE lesson09 "Learning-rate schedules": write warmup_cosine_lr here
    raise NotImplementedError('warmup_cosine_lr (lesson 09) is not implemented yet: reread lessons/09_training_dynamics.md, section "Learning-rate schedules"')

"""Lesson 09: tools to watch and steer training."""

import math

import numpy as np

from .data import OPERATIONS, VOCAB, create_batch


def per_operation_accuracy(model, dataset):
    """Accuracy of the model on the examples of each operation.

    dataset: list of (tokens, target) examples, each starting with its operation's token
    returns: {op: accuracy in [0, 1]} for every op in OPERATIONS (nan where an op has no example)
    """
    # BEGIN SOLUTION
    if len(dataset) == 0:
        return {op: math.nan for op in OPERATIONS}
    tokens, targets, mask = create_batch(dataset)
    correct = model.forward(tokens, mask).argmax(axis=1) == targets  # (N,)
    result = {}
    for op in OPERATIONS:
        of_op = tokens[:, 0] == VOCAB[op]
        result[op] = float(correct[of_op].mean()) if of_op.any() else math.nan
    return result
    # END SOLUTION


def attention_entropy(weights):
    """Entropy in nats of each attention row: -sum(w log w) over the last axis, 0 log 0 taken as 0.

    weights: (..., T_k) -> (...)
    """
    # BEGIN SOLUTION
    safe = np.where(weights > 0, weights, 1.0)  # log(1) = 0 where the weight is 0
    return -(weights * np.log(safe)).sum(axis=-1)
    # END SOLUTION


def clip_grad_norm(parameters, max_norm):
    """Scale every gradient in place so that their global L2 norm is at most max_norm.

    parameters: list of (param, grad) pairs
    returns: the global norm before clipping
    """
    if max_norm <= 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}")
    # BEGIN SOLUTION
    grads = [grad for _, grad in parameters]
    norm = math.sqrt(sum(float((g * g).sum()) for g in grads))
    if norm > max_norm:
        for g in grads:
            g *= max_norm / norm
    return norm
    # END SOLUTION


def warmup_cosine_lr(step, base_lr, warmup_steps, total_steps, min_lr=0.0):
    """The learning rate at a step (counting from 0) of linear warm-up then cosine decay.

    Steps 0..warmup_steps-1 rise linearly to base_lr (step 0 gives base_lr / warmup_steps); the cosine
    then falls from base_lr to min_lr, reached at total_steps and kept after.
    """
    if step < 0 or warmup_steps < 0 or total_steps < warmup_steps:
        raise ValueError(f"need 0 <= step and 0 <= warmup_steps <= total_steps, got step={step}, "
                         f"warmup_steps={warmup_steps}, total_steps={total_steps}")
    # BEGIN SOLUTION
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    progress = (step - warmup_steps) / (total_steps - warmup_steps)  # 0 -> 1
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress))
    # END SOLUTION

"""Lesson 08: one step of training, and evaluation without changing the model."""

import numpy as np


def train_step(model, tokens, targets, loss_fn, optimizer, mask=None):
    """Zero the gradients, forward, loss, backward, one optimizer step.

    tokens: (B, T) int, targets: (B,) int, mask: (B, T) bool or None
    returns: (loss: float, accuracy: float in [0, 1]) of this batch before the step
    """
    # BEGIN SOLUTION
    model.zero_grad()
    logits = model.forward(tokens, mask)  # (B, V)
    loss = loss_fn.forward(logits, targets)
    model.backward(loss_fn.backward())
    optimizer.step()
    return float(loss), float((logits.argmax(axis=1) == targets).mean())
    # END SOLUTION


def evaluate(model, tokens, targets, loss_fn, batch_size=256):
    """Loss and accuracy over all examples, in batches; parameters are not changed.

    tokens: (N, T) int, targets: (N,) int
    returns: (mean loss over the N examples, accuracy in [0, 1])
    """
    if len(tokens) == 0:
        raise ValueError("evaluate needs at least one example")
    # BEGIN SOLUTION
    total_loss, correct = 0.0, 0
    for start in range(0, len(tokens), batch_size):
        batch, batch_targets = tokens[start:start + batch_size], targets[start:start + batch_size]
        logits = model.forward(batch)
        total_loss += loss_fn.forward(logits, batch_targets) * len(batch)  # undo the batch mean
        correct += int((logits.argmax(axis=1) == batch_targets).sum())
    return total_loss / len(tokens), correct / len(tokens)
    # END SOLUTION

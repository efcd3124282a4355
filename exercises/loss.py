# Generated from solutions/ by `python -m kata.authoring.stubs`: your work goes where NotImplementedError is raised.
"""Lesson 06: softmax cross-entropy loss over the logits."""

import numpy as np

from .validation import check_array


class CrossEntropyLoss:
    """Mean over the batch of -log softmax(logits)[target]."""

    def __init__(self):
        self.cache = None

    def __call__(self, logits, targets):
        return self.forward(logits, targets)

    def forward(self, logits, targets):
        """logits: (B, V) float, targets: (B,) int in [0, V) -> mean loss (float)"""
        check_array(logits, "logits", ndim=2)
        if not isinstance(targets, np.ndarray) or targets.dtype.kind not in "iu":
            raise TypeError(f"targets must be an integer numpy array of shape ({logits.shape[0]},)")
        if targets.shape != logits.shape[:1]:
            raise ValueError(f"targets must have shape ({logits.shape[0]},) (B,), got {targets.shape}")
        if targets.size and (targets.min() < 0 or targets.max() >= logits.shape[1]):
            raise ValueError(f"targets must be class ids in [0, {logits.shape[1]}), "
                             f"got values from {targets.min()} to {targets.max()}")
        # EXERCISE lesson06 "Cross-entropy": write CrossEntropyLoss.forward here
        raise NotImplementedError('CrossEntropyLoss.forward (lesson 06) is not implemented yet: reread lessons/06_loss.md, section "Cross-entropy"')

    def backward(self):
        """-> (B, V): (softmax(logits) - one_hot(targets)) / B"""
        # EXERCISE lesson06 "The gradient of softmax and cross-entropy": write CrossEntropyLoss.backward here
        raise NotImplementedError('CrossEntropyLoss.backward (lesson 06) is not implemented yet: reread lessons/06_loss.md, section "The gradient of softmax and cross-entropy"')

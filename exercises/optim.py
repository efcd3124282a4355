# Generated from solutions/ by `python -m kata.authoring.stubs`: your work goes where NotImplementedError is raised.
"""Lesson 08: optimizers that update (param, grad) pairs in place."""

import numpy as np


def _resolve(parameters):
    """A list of (param, grad) pairs, or a callable returning one -> a list of pairs."""
    pairs = parameters() if callable(parameters) else parameters
    pairs = list(pairs)
    for i, pair in enumerate(pairs):
        if len(pair) != 2 or not all(isinstance(a, np.ndarray) for a in pair) or pair[0].shape != pair[1].shape:
            raise TypeError(f"parameter {i} must be a (param, grad) pair of numpy arrays of the same shape")
    return pairs


class SGD:
    """Stochastic gradient descent with momentum: v = momentum * v + g; p -= lr * v."""

    def __init__(self, parameters, learning_rate=0.01, momentum=0.0):
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.parameters = parameters
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.velocities = None

    def step(self):
        pairs = _resolve(self.parameters)
        # EXERCISE lesson08 "SGD and momentum": write SGD.step here
        raise NotImplementedError('SGD.step (lesson 08) is not implemented yet: reread lessons/08_training_loop.md, section "SGD and momentum"')

    def zero_grad(self):
        for _, grad in _resolve(self.parameters):
            grad.fill(0.0)


class Adam:
    """Adam (Kingma and Ba, 2015): moments of the gradient with bias correction."""

    def __init__(self, parameters, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8):
        for name, beta in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {beta}")
        self.parameters = parameters
        self.learning_rate = learning_rate
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self.t = 0
        self.m = self.v = None

    def step(self):
        pairs = _resolve(self.parameters)
        # EXERCISE lesson08 "Adam": write Adam.step here
        raise NotImplementedError('Adam.step (lesson 08) is not implemented yet: reread lessons/08_training_loop.md, section "Adam"')

    def zero_grad(self):
        for _, grad in _resolve(self.parameters):
            grad.fill(0.0)

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
        # BEGIN SOLUTION
        if self.velocities is None:
            self.velocities = [np.zeros_like(param) for param, _ in pairs]
        for (param, grad), v in zip(pairs, self.velocities):
            v *= self.momentum
            v += grad
            param -= self.learning_rate * v
        # END SOLUTION

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
        # BEGIN SOLUTION
        if self.m is None:
            self.m = [np.zeros_like(param) for param, _ in pairs]
            self.v = [np.zeros_like(param) for param, _ in pairs]
        self.t += 1
        # bias correction: m and v start at 0, so early averages are too small by these factors
        correction1 = 1.0 - self.beta1 ** self.t
        correction2 = 1.0 - self.beta2 ** self.t
        for (param, grad), m, v in zip(pairs, self.m, self.v):
            m += (1.0 - self.beta1) * (grad - m)  # m = beta1 * m + (1 - beta1) * grad, in place
            v += (1.0 - self.beta2) * (grad * grad - v)
            param -= self.learning_rate * (m / correction1) / (np.sqrt(v / correction2) + self.epsilon)
        # END SOLUTION

    def zero_grad(self):
        for _, grad in _resolve(self.parameters):
            grad.fill(0.0)

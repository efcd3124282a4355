"""Lesson 03: the position-wise layers: Linear, ReLU, LayerNorm and the feed-forward network."""

import numpy as np

from .validation import check_array, check_positive_int, xavier_uniform


class Linear:
    """y = x @ W + b over the last axis.

    W: (in, out) Xavier-uniform, b: (out,) zeros (None when bias=False)
    """

    def __init__(self, in_dim, out_dim, bias=True):
        self.in_dim = check_positive_int(in_dim, "in_dim")
        self.out_dim = check_positive_int(out_dim, "out_dim")
        self.W = xavier_uniform(self.in_dim, self.out_dim)
        self.grad_W = np.zeros_like(self.W)
        self.b = np.zeros(self.out_dim) if bias else None
        self.grad_b = np.zeros(self.out_dim) if bias else None
        self.cache = None

    def forward(self, x):
        """x: (..., in) -> (..., out)"""
        check_array(x, "x", min_ndim=1, last_dim=self.in_dim)
        # BEGIN SOLUTION
        self.cache = x
        out = x.reshape(-1, self.in_dim) @ self.W  # (N, out): one 2-D product is faster than a stack
        if self.b is not None:
            out += self.b
        return out.reshape(*x.shape[:-1], self.out_dim)
        # END SOLUTION

    def backward(self, grad_output):
        """grad_output: (..., out) -> (..., in); adds into grad_W and grad_b."""
        # BEGIN SOLUTION
        x = self.cache
        g2 = grad_output.reshape(-1, self.out_dim)  # (N, out), N = all leading axes
        self.grad_W += x.reshape(-1, self.in_dim).T @ g2
        if self.b is not None:
            self.grad_b += g2.sum(axis=0)  # summed, not averaged: the loss already averages
        return (g2 @ self.W.T).reshape(x.shape)
        # END SOLUTION

    def get_parameters(self):
        if self.b is None:
            return [(self.W, self.grad_W)]
        return [(self.W, self.grad_W), (self.b, self.grad_b)]

    def zero_grad(self):
        for _, grad in self.get_parameters():
            grad.fill(0.0)


class ReLU:
    """max(0, x), elementwise."""

    def __init__(self):
        self.cache = None

    def forward(self, x):
        """x: any shape -> same shape"""
        check_array(x, "x")
        # BEGIN SOLUTION
        self.cache = x > 0
        return np.maximum(x, 0.0)
        # END SOLUTION

    def backward(self, grad_output):
        """The gradient passes where x > 0 and is 0 elsewhere (x = 0 included)."""
        # BEGIN SOLUTION
        return grad_output * self.cache
        # END SOLUTION

    def get_parameters(self):
        return []

    def zero_grad(self):
        pass


class LayerNorm:
    """Normalise each vector over its last axis, then scale by gamma and shift by beta.

    gamma: (D,) ones, beta: (D,) zeros; the variance is the biased one (divided by D).
    """

    def __init__(self, dim, eps=1e-5):
        self.dim = check_positive_int(dim, "dim")
        self.eps = float(eps)
        self.gamma = np.ones(self.dim)
        self.beta = np.zeros(self.dim)
        self.grad_gamma = np.zeros(self.dim)
        self.grad_beta = np.zeros(self.dim)
        self.cache = None

    def forward(self, x):
        """x: (..., D) -> (..., D)"""
        check_array(x, "x", min_ndim=1, last_dim=self.dim)
        # BEGIN SOLUTION
        centered = x - x.mean(axis=-1, keepdims=True)  # (..., D)
        var = (centered * centered).mean(axis=-1, keepdims=True)  # (..., 1), biased: divided by D
        inv_std = 1.0 / np.sqrt(var + self.eps)  # eps under the root, beside the variance
        x_hat = centered * inv_std  # (..., D)
        self.cache = (x_hat, inv_std)
        return self.gamma * x_hat + self.beta
        # END SOLUTION

    def backward(self, grad_output):
        """grad_output: (..., D) -> (..., D); adds into grad_gamma and grad_beta."""
        # BEGIN SOLUTION
        x_hat, inv_std = self.cache
        self.grad_gamma += (grad_output * x_hat).reshape(-1, self.dim).sum(axis=0)
        self.grad_beta += grad_output.reshape(-1, self.dim).sum(axis=0)
        d_hat = grad_output * self.gamma  # (..., D)
        # the two means are the gradient through the mean and through the variance
        return inv_std * (d_hat - d_hat.mean(axis=-1, keepdims=True)
                          - x_hat * (d_hat * x_hat).mean(axis=-1, keepdims=True))
        # END SOLUTION

    def get_parameters(self):
        return [(self.gamma, self.grad_gamma), (self.beta, self.grad_beta)]

    def zero_grad(self):
        self.grad_gamma.fill(0.0)
        self.grad_beta.fill(0.0)


class FeedForward:
    """The position-wise network linear2(relu(linear1(x))), D -> F -> D."""

    def __init__(self, embed_dim, ffn_dim):
        self.linear1 = Linear(embed_dim, ffn_dim)
        self.relu = ReLU()
        self.linear2 = Linear(ffn_dim, embed_dim)

    def forward(self, x):
        """x: (..., D) -> (..., D)"""
        # BEGIN SOLUTION
        return self.linear2.forward(self.relu.forward(self.linear1.forward(x)))
        # END SOLUTION

    def backward(self, grad_output):
        """grad_output: (..., D) -> (..., D)"""
        # BEGIN SOLUTION
        return self.linear1.backward(self.relu.backward(self.linear2.backward(grad_output)))
        # END SOLUTION

    def get_parameters(self):
        return self.linear1.get_parameters() + self.linear2.get_parameters()

    def zero_grad(self):
        self.linear1.zero_grad()
        self.linear2.zero_grad()

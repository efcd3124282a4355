# An independent implementation (meta/test_similarity.py): the stub's given code, the exercises written anew.
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
        self.cache = x
        result = np.tensordot(x, self.W, axes=([-1], [0]))
        if self.b is not None:
            result = result + self.b
        return result

    def backward(self, grad_output):
        """grad_output: (..., out) -> (..., in); adds into grad_W and grad_b."""
        rows_in = self.cache.reshape(-1, self.in_dim)
        rows_grad = grad_output.reshape(-1, self.out_dim)
        self.grad_W += np.einsum("ni,no->io", rows_in, rows_grad)
        if self.b is not None:
            self.grad_b += np.einsum("no->o", rows_grad)
        return np.tensordot(grad_output, self.W, axes=([-1], [1]))

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
        self.cache = np.greater(x, 0)
        return np.clip(x, 0, None)

    def backward(self, grad_output):
        """The gradient passes where x > 0 and is 0 elsewhere (x = 0 included)."""
        return np.where(self.cache, grad_output, np.zeros_like(grad_output))

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
        mu = np.mean(x, axis=-1, keepdims=True)
        centred = x - mu
        inv_sigma = 1.0 / np.sqrt(np.mean(centred * centred, axis=-1, keepdims=True) + self.eps)
        normalised = centred * inv_sigma
        self.cache = (normalised, inv_sigma)
        return normalised * self.gamma + self.beta

    def backward(self, grad_output):
        """grad_output: (..., D) -> (..., D); adds into grad_gamma and grad_beta."""
        normalised, inv_sigma = self.cache
        batch_axes = tuple(range(grad_output.ndim - 1))
        self.grad_beta += np.sum(grad_output, axis=batch_axes)
        self.grad_gamma += np.sum(grad_output * normalised, axis=batch_axes)
        g = grad_output * self.gamma
        width = g.shape[-1]
        mean_g = np.sum(g, axis=-1, keepdims=True) / width
        mean_gx = np.sum(g * normalised, axis=-1, keepdims=True) / width
        return inv_sigma * (g - mean_g - normalised * mean_gx)

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
        out = x
        for stage in (self.linear1, self.relu, self.linear2):
            out = stage.forward(out)
        return out

    def backward(self, grad_output):
        """grad_output: (..., D) -> (..., D)"""
        grad = grad_output
        for stage in (self.linear2, self.relu, self.linear1):
            grad = stage.backward(grad)
        return grad

    def get_parameters(self):
        return self.linear1.get_parameters() + self.linear2.get_parameters()

    def zero_grad(self):
        self.linear1.zero_grad()
        self.linear2.zero_grad()

# Generated from solutions/ by `python -m kata.authoring.stubs`: your work goes where NotImplementedError is raised.
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
        # EXERCISE lesson03 "Linear layers": write Linear.forward here
        raise NotImplementedError('Linear.forward (lesson 03) is not implemented yet: reread lessons/03_layers.md, section "Linear layers"')

    def backward(self, grad_output):
        """grad_output: (..., out) -> (..., in); adds into grad_W and grad_b."""
        # EXERCISE lesson03 "Linear layers": write Linear.backward here
        raise NotImplementedError('Linear.backward (lesson 03) is not implemented yet: reread lessons/03_layers.md, section "Linear layers"')

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
        # EXERCISE lesson03 "ReLU": write ReLU.forward here
        raise NotImplementedError('ReLU.forward (lesson 03) is not implemented yet: reread lessons/03_layers.md, section "ReLU"')

    def backward(self, grad_output):
        """The gradient passes where x > 0 and is 0 elsewhere (x = 0 included)."""
        # EXERCISE lesson03 "ReLU": write ReLU.backward here
        raise NotImplementedError('ReLU.backward (lesson 03) is not implemented yet: reread lessons/03_layers.md, section "ReLU"')

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
        # EXERCISE lesson03 "Layer normalisation": write LayerNorm.forward here
        raise NotImplementedError('LayerNorm.forward (lesson 03) is not implemented yet: reread lessons/03_layers.md, section "Layer normalisation"')

    def backward(self, grad_output):
        """grad_output: (..., D) -> (..., D); adds into grad_gamma and grad_beta."""
        # EXERCISE lesson03 "LayerNorm backward": write LayerNorm.backward here
        raise NotImplementedError('LayerNorm.backward (lesson 03) is not implemented yet: reread lessons/03_layers.md, section "LayerNorm backward"')

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
        # EXERCISE lesson03 "The feed-forward network": write FeedForward.forward here
        raise NotImplementedError('FeedForward.forward (lesson 03) is not implemented yet: reread lessons/03_layers.md, section "The feed-forward network"')

    def backward(self, grad_output):
        """grad_output: (..., D) -> (..., D)"""
        # EXERCISE lesson03 "The feed-forward network": write FeedForward.backward here
        raise NotImplementedError('FeedForward.backward (lesson 03) is not implemented yet: reread lessons/03_layers.md, section "The feed-forward network"')

    def get_parameters(self):
        return self.linear1.get_parameters() + self.linear2.get_parameters()

    def zero_grad(self):
        self.linear1.zero_grad()
        self.linear2.zero_grad()

# Generated from solutions/ by `python -m kata.authoring.stubs`: your work goes where NotImplementedError is raised.
"""Lesson 02: softmax, scaled dot-product attention and multi-head attention."""

import math

import numpy as np

from .validation import check_array, check_mask, check_positive_int, xavier_uniform


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along axis, shifted by the maximum so exp never overflows."""
    # EXERCISE lesson02 "Softmax": write softmax here
    raise NotImplementedError('softmax (lesson 02) is not implemented yet: reread lessons/02_attention.md, section "Softmax"')


def softmax_backward(grad_output, y, axis=-1):
    """The Jacobian-vector product of softmax: y * (g - sum(g * y)) along axis, y the forward output."""
    # EXERCISE lesson02 "Softmax backward": write softmax_backward here
    raise NotImplementedError('softmax_backward (lesson 02) is not implemented yet: reread lessons/02_attention.md, section "Softmax backward"')


class Softmax:
    """Softmax along one axis, as a layer (no parameters)."""

    def __init__(self, axis=-1):
        self.axis = axis
        self.cache = None

    def forward(self, x):
        """x: any shape -> same shape, positive, summing to 1 along axis"""
        check_array(x, "x", min_ndim=1)
        self.cache = softmax(x, self.axis)
        return self.cache

    def backward(self, grad_output):
        """grad_output: same shape as x -> gradient with respect to x"""
        return softmax_backward(grad_output, self.cache, self.axis)

    def get_parameters(self):
        return []

    def zero_grad(self):
        pass


def scaled_dot_product_attention(Q, K, V, mask=None):
    """softmax(Q K^T / sqrt(Dh)) V over the keys.

    Q: (..., T_q, Dh), K: (..., T_k, Dh), V: (..., T_k, Dh)
    mask: broadcastable to (..., T_q, T_k), True where a query may attend to a key
    returns: output (..., T_q, Dh), weights (..., T_q, T_k)
    """
    check_array(Q, "Q", min_ndim=2)
    check_array(K, "K", min_ndim=2, last_dim=Q.shape[-1])
    check_array(V, "V", min_ndim=2)
    if K.shape[-2] != V.shape[-2]:
        raise ValueError(f"K and V need the same number of keys, got shapes {K.shape} and {V.shape}")
    # EXERCISE lesson02 "Scaled dot-product attention": write scaled_dot_product_attention here
    raise NotImplementedError('scaled_dot_product_attention (lesson 02) is not implemented yet: reread lessons/02_attention.md, section "Scaled dot-product attention"')


def scaled_dot_product_attention_backward(grad_output, Q, K, V, weights):
    """The exact gradient of scaled_dot_product_attention.

    grad_output: (..., T_q, Dh); Q, K, V and weights as in and out of the forward pass
    returns: dQ (..., T_q, Dh), dK (..., T_k, Dh), dV (..., T_k, Dh)
    """
    # EXERCISE lesson02 "Attention backward": write scaled_dot_product_attention_backward here
    raise NotImplementedError('scaled_dot_product_attention_backward (lesson 02) is not implemented yet: reread lessons/02_attention.md, section "Attention backward"')


class MultiHeadAttention:
    """H heads of self-attention over D / H dimensions each, in the layout of torch.nn.MultiheadAttention.

    W_q, W_k, W_v, W_o: (D, D); head h uses columns h*Dh:(h+1)*Dh of Q, K and V.
    """

    def __init__(self, embed_dim, num_heads):
        self.embed_dim = check_positive_int(embed_dim, "embed_dim")
        self.num_heads = check_positive_int(num_heads, "num_heads")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim={embed_dim} must be divisible by num_heads={num_heads}")
        self.head_dim = embed_dim // num_heads
        for name in ("W_q", "W_k", "W_v", "W_o"):
            setattr(self, name, xavier_uniform(embed_dim, embed_dim))
            setattr(self, "grad_" + name, np.zeros((embed_dim, embed_dim)))
        self.last_attention_weights = None
        self.cache = None

    def forward(self, x, mask=None):
        """x: (B, T, D), mask: (B, T) bool, True on tokens that may be attended to -> (B, T, D)"""
        check_array(x, "x", ndim=3, last_dim=self.embed_dim)
        if mask is not None:
            check_mask(mask, x.shape[:2])
        # EXERCISE lesson02 "Multiple heads": write MultiHeadAttention.forward here
        raise NotImplementedError('MultiHeadAttention.forward (lesson 02) is not implemented yet: reread lessons/02_attention.md, section "Multiple heads"')

    def backward(self, grad_output):
        """grad_output: (B, T, D) -> dx (B, T, D); adds into grad_W_q, grad_W_k, grad_W_v, grad_W_o."""
        # EXERCISE lesson02 "Multi-head backward": write MultiHeadAttention.backward here
        raise NotImplementedError('MultiHeadAttention.backward (lesson 02) is not implemented yet: reread lessons/02_attention.md, section "Multi-head backward"')

    def get_parameters(self):
        return [(self.W_q, self.grad_W_q), (self.W_k, self.grad_W_k),
                (self.W_v, self.grad_W_v), (self.W_o, self.grad_W_o)]

    def zero_grad(self):
        for _, grad in self.get_parameters():
            grad.fill(0.0)

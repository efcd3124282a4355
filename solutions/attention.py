"""Lesson 02: softmax, scaled dot-product attention and multi-head attention."""

import math

import numpy as np

from .validation import check_array, check_mask, check_positive_int, xavier_uniform


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along axis, shifted by the maximum so exp never overflows."""
    # BEGIN SOLUTION
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)
    # END SOLUTION


def softmax_backward(grad_output, y, axis=-1):
    """The Jacobian-vector product of softmax: y * (g - sum(g * y)) along axis, y the forward output."""
    # BEGIN SOLUTION
    return y * (grad_output - (grad_output * y).sum(axis=axis, keepdims=True))
    # END SOLUTION


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
    # BEGIN SOLUTION
    scores = Q @ K.swapaxes(-1, -2) / math.sqrt(Q.shape[-1])  # (..., T_q, T_k)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)  # exp(-inf) = 0: masked weights are exactly 0
    weights = softmax(scores, axis=-1)
    return weights @ V, weights  # (..., T_q, Dh), (..., T_q, T_k)
    # END SOLUTION


def scaled_dot_product_attention_backward(grad_output, Q, K, V, weights):
    """The exact gradient of scaled_dot_product_attention.

    grad_output: (..., T_q, Dh); Q, K, V and weights as in and out of the forward pass
    returns: dQ (..., T_q, Dh), dK (..., T_k, Dh), dV (..., T_k, Dh)
    """
    # BEGIN SOLUTION
    scale = 1.0 / math.sqrt(Q.shape[-1])
    dV = weights.swapaxes(-1, -2) @ grad_output  # (..., T_k, Dh)
    d_weights = grad_output @ V.swapaxes(-1, -2)  # (..., T_q, T_k)
    d_scores = softmax_backward(d_weights, weights) * scale  # masked entries stay 0: their weight is 0
    dQ = d_scores @ K  # (..., T_q, Dh)
    dK = d_scores.swapaxes(-1, -2) @ Q  # (..., T_k, Dh)
    return dQ, dK, dV
    # END SOLUTION


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
        # BEGIN SOLUTION
        B, T, D = x.shape
        H, Dh = self.num_heads, self.head_dim

        def split_heads(a):
            return a.reshape(B, T, H, Dh).transpose(0, 2, 1, 3)  # (B, H, T, Dh)

        x2 = x.reshape(B * T, D)  # 2-D products are faster than stacked ones
        Q, K, V = split_heads(x2 @ self.W_q), split_heads(x2 @ self.W_k), split_heads(x2 @ self.W_v)
        key_mask = None if mask is None else mask[:, None, None, :]  # (B, 1, 1, T)
        heads, weights = scaled_dot_product_attention(Q, K, V, key_mask)  # (B, H, T, Dh), (B, H, T, T)
        concat = heads.transpose(0, 2, 1, 3).reshape(B, T, D)  # (B, T, D)
        self.cache = (x, Q, K, V, weights, concat)
        self.last_attention_weights = weights
        return (concat.reshape(B * T, D) @ self.W_o).reshape(B, T, D)
        # END SOLUTION

    def backward(self, grad_output):
        """grad_output: (B, T, D) -> dx (B, T, D); adds into grad_W_q, grad_W_k, grad_W_v, grad_W_o."""
        # BEGIN SOLUTION
        x, Q, K, V, weights, concat = self.cache
        B, T, D = x.shape
        H, Dh = self.num_heads, self.head_dim
        self.grad_W_o += concat.reshape(-1, D).T @ grad_output.reshape(-1, D)
        d_heads = (grad_output.reshape(B * T, D) @ self.W_o.T).reshape(B, T, H, Dh).transpose(0, 2, 1, 3)
        dQ, dK, dV = scaled_dot_product_attention_backward(d_heads, Q, K, V, weights)

        def merge_heads(a):
            return a.transpose(0, 2, 1, 3).reshape(B * T, D)  # (B*T, D)

        dQ, dK, dV = merge_heads(dQ), merge_heads(dK), merge_heads(dV)
        x2 = x.reshape(B * T, D)
        self.grad_W_q += x2.T @ dQ
        self.grad_W_k += x2.T @ dK
        self.grad_W_v += x2.T @ dV
        dx = dQ @ self.W_q.T + dK @ self.W_k.T + dV @ self.W_v.T
        return dx.reshape(B, T, D)
        # END SOLUTION

    def get_parameters(self):
        return [(self.W_q, self.grad_W_q), (self.W_k, self.grad_W_k),
                (self.W_v, self.grad_W_v), (self.W_o, self.grad_W_o)]

    def zero_grad(self):
        for _, grad in self.get_parameters():
            grad.fill(0.0)

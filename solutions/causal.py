"""Lesson 11: causal self-attention, and the Pre-LN block a decoder stacks."""

import numpy as np

from .attention import MultiHeadAttention, scaled_dot_product_attention, scaled_dot_product_attention_backward
from .layers import FeedForward, LayerNorm
from .validation import check_array, check_mask, check_positive_int


def causal_mask(T):
    """(T, T) bool, True where query t may attend to key s: s <= t (the lower triangle with its diagonal)."""
    T = check_positive_int(T, "T")
    # BEGIN SOLUTION
    return np.tril(np.ones((T, T), dtype=bool))
    # END SOLUTION


class CausalSelfAttention(MultiHeadAttention):
    """Multi-head self-attention in which position t sees positions 0..t only.

    The parameters and their layout are those of MultiHeadAttention (W_q, W_k, W_v, W_o, no biases).
    forward(x, mask): mask (B, T) marks real tokens; a key may be attended to when it is real AND not after
    the query. After forward, last_attention_weights (B, H, T, T) is exactly 0 above the diagonal.
    """

    def forward(self, x, mask=None):
        """x: (B, T, D), mask: (B, T) bool or None -> (B, T, D)"""
        check_array(x, "x", ndim=3, last_dim=self.embed_dim)
        if mask is not None:
            check_mask(mask, x.shape[:2])
        # BEGIN SOLUTION
        B, T, D = x.shape
        H, Dh = self.num_heads, self.head_dim
        allowed = causal_mask(T)[None, None]  # (1, 1, T, T)
        if mask is not None:
            allowed = allowed & mask[:, None, None, :]  # (B, 1, T, T): keys that are real and not later
        projected = [(x @ W).reshape(B, T, H, Dh).transpose(0, 2, 1, 3) for W in (self.W_q, self.W_k, self.W_v)]
        heads, weights = scaled_dot_product_attention(*projected, allowed)  # (B, H, T, Dh), (B, H, T, T)
        joined = heads.transpose(0, 2, 1, 3).reshape(B, T, D)
        self.cache = (x, projected, weights, joined)
        self.last_attention_weights = weights
        return joined @ self.W_o
        # END SOLUTION

    def backward(self, grad_output):
        """grad_output: (B, T, D) -> dx (B, T, D); adds into grad_W_q, grad_W_k, grad_W_v, grad_W_o.
        A masked weight is 0, so the softmax backward gives its score no gradient: nothing flows back from
        a position to a later one."""
        # BEGIN SOLUTION
        x, (Q, K, V), weights, joined = self.cache
        B, T, D = x.shape
        self.grad_W_o += np.einsum("btd,bte->de", joined, grad_output)
        d_heads = (grad_output @ self.W_o.T).reshape(B, T, self.num_heads, self.head_dim).transpose(0, 2, 1, 3)
        dx = np.zeros_like(x)
        for d_part, W, grad_W in zip(scaled_dot_product_attention_backward(d_heads, Q, K, V, weights),
                                     (self.W_q, self.W_k, self.W_v), (self.grad_W_q, self.grad_W_k, self.grad_W_v)):
            d_proj = d_part.transpose(0, 2, 1, 3).reshape(B, T, D)  # back to (B, T, D), heads side by side
            grad_W += np.einsum("btd,bte->de", x, d_proj)
            dx += d_proj @ W.T
        return dx
        # END SOLUTION


class PreLNBlock:
    """The Pre-LN block of GPT-2 and most decoders since: normalise before each sub-layer, never after.

    h = x + attention(norm1(x), mask); out = h + feed_forward(norm2(h)).
    attention is a CausalSelfAttention (causal=True, the default) or a MultiHeadAttention (causal=False).
    """

    def __init__(self, embed_dim, num_heads, ffn_dim, causal=True):
        self.embed_dim = embed_dim
        self.causal = bool(causal)
        self.norm1 = LayerNorm(embed_dim)
        self.attention = (CausalSelfAttention if self.causal else MultiHeadAttention)(embed_dim, num_heads)
        self.norm2 = LayerNorm(embed_dim)
        self.feed_forward = FeedForward(embed_dim, ffn_dim)

    def forward(self, x, mask=None):
        """x: (B, T, D), mask: (B, T) bool or None -> (B, T, D)"""
        check_array(x, "x", ndim=3, last_dim=self.embed_dim)
        # BEGIN SOLUTION
        h = x + self.attention.forward(self.norm1.forward(x), mask)
        return h + self.feed_forward.forward(self.norm2.forward(h))
        # END SOLUTION

    def backward(self, grad_output):
        """grad_output: (B, T, D) -> (B, T, D); the skip paths carry grad_output back untouched."""
        # BEGIN SOLUTION
        d_h = grad_output + self.norm2.backward(self.feed_forward.backward(grad_output))
        return d_h + self.norm1.backward(self.attention.backward(d_h))
        # END SOLUTION

    def get_parameters(self):
        return (self.norm1.get_parameters() + self.attention.get_parameters()
                + self.norm2.get_parameters() + self.feed_forward.get_parameters())

    def zero_grad(self):
        for _, grad in self.get_parameters():
            grad.fill(0.0)

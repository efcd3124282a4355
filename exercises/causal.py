# Generated from solutions/ by `python -m kata.authoring.stubs`: your work goes where NotImplementedError is raised.
"""Lesson 11: causal self-attention, and the Pre-LN block a decoder stacks."""

import numpy as np

from .attention import MultiHeadAttention, scaled_dot_product_attention, scaled_dot_product_attention_backward
from .layers import FeedForward, LayerNorm
from .validation import check_array, check_mask, check_positive_int


def causal_mask(T):
    """(T, T) bool, True where query t may attend to key s: s <= t (the lower triangle with its diagonal)."""
    T = check_positive_int(T, "T")
    # EXERCISE lesson11 "The causal mask": write causal_mask here
    raise NotImplementedError('causal_mask (lesson 11) is not implemented yet: reread lessons/11_causal_attention.md, section "The causal mask"')


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
        # EXERCISE lesson11 "Causal self-attention": write CausalSelfAttention.forward here
        raise NotImplementedError('CausalSelfAttention.forward (lesson 11) is not implemented yet: reread lessons/11_causal_attention.md, section "Causal self-attention"')

    def backward(self, grad_output):
        """grad_output: (B, T, D) -> dx (B, T, D); adds into grad_W_q, grad_W_k, grad_W_v, grad_W_o.
        A masked weight is 0, so the softmax backward gives its score no gradient: nothing flows back from
        a position to a later one."""
        # EXERCISE lesson11 "Causal attention backward": write CausalSelfAttention.backward here
        raise NotImplementedError('CausalSelfAttention.backward (lesson 11) is not implemented yet: reread lessons/11_causal_attention.md, section "Causal attention backward"')


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
        # EXERCISE lesson11 "The Pre-LN block": write PreLNBlock.forward here
        raise NotImplementedError('PreLNBlock.forward (lesson 11) is not implemented yet: reread lessons/11_causal_attention.md, section "The Pre-LN block"')

    def backward(self, grad_output):
        """grad_output: (B, T, D) -> (B, T, D); the skip paths carry grad_output back untouched."""
        # EXERCISE lesson11 "Pre-LN backward": write PreLNBlock.backward here
        raise NotImplementedError('PreLNBlock.backward (lesson 11) is not implemented yet: reread lessons/11_causal_attention.md, section "Pre-LN backward"')

    def get_parameters(self):
        return (self.norm1.get_parameters() + self.attention.get_parameters()
                + self.norm2.get_parameters() + self.feed_forward.get_parameters())

    def zero_grad(self):
        for _, grad in self.get_parameters():
            grad.fill(0.0)

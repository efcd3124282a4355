# Generated from solutions/ by `python -m kata.authoring.stubs`: your work goes where NotImplementedError is raised.
"""Lesson 04: the Post-LN transformer block."""

from .attention import MultiHeadAttention
from .layers import FeedForward, LayerNorm
from .validation import check_array


class TransformerBlock:
    """h = norm1(x + attention(x, mask)); out = norm2(h + feed_forward(h))."""

    def __init__(self, embed_dim, num_heads, ffn_dim):
        self.embed_dim = embed_dim
        self.attention = MultiHeadAttention(embed_dim, num_heads)
        self.norm1 = LayerNorm(embed_dim)
        self.feed_forward = FeedForward(embed_dim, ffn_dim)
        self.norm2 = LayerNorm(embed_dim)

    def forward(self, x, mask=None):
        """x: (B, T, D), mask: (B, T) bool or None -> (B, T, D)"""
        check_array(x, "x", ndim=3, last_dim=self.embed_dim)
        # EXERCISE lesson04 "The Post-LN block": write TransformerBlock.forward here
        raise NotImplementedError('TransformerBlock.forward (lesson 04) is not implemented yet: reread lessons/04_transformer_block.md, section "The Post-LN block"')

    def backward(self, grad_output):
        """grad_output: (B, T, D) -> (B, T, D); each residual adds its skip path's gradient."""
        # EXERCISE lesson04 "Backward through the residuals": write TransformerBlock.backward here
        raise NotImplementedError('TransformerBlock.backward (lesson 04) is not implemented yet: reread lessons/04_transformer_block.md, section "Backward through the residuals"')

    def get_parameters(self):
        return (self.attention.get_parameters() + self.norm1.get_parameters()
                + self.feed_forward.get_parameters() + self.norm2.get_parameters())

    def zero_grad(self):
        for _, grad in self.get_parameters():
            grad.fill(0.0)

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
        # BEGIN SOLUTION
        h = self.norm1.forward(x + self.attention.forward(x, mask))
        return self.norm2.forward(h + self.feed_forward.forward(h))
        # END SOLUTION

    def backward(self, grad_output):
        """grad_output: (B, T, D) -> (B, T, D); each residual adds its skip path's gradient."""
        # BEGIN SOLUTION
        d_sum2 = self.norm2.backward(grad_output)
        d_h = d_sum2 + self.feed_forward.backward(d_sum2)
        d_sum1 = self.norm1.backward(d_h)
        return d_sum1 + self.attention.backward(d_sum1)
        # END SOLUTION

    def get_parameters(self):
        return (self.attention.get_parameters() + self.norm1.get_parameters()
                + self.feed_forward.get_parameters() + self.norm2.get_parameters())

    def zero_grad(self):
        for _, grad in self.get_parameters():
            grad.fill(0.0)

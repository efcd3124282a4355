"""Lesson 01: token embeddings and sinusoidal positional encoding."""

import numpy as np

from .validation import check_array, check_positive_int, check_tokens


class Embedding:
    """A learned lookup table: token id -> vector of size D.

    W: (V, D), grad_W: (V, D)
    """

    def __init__(self, vocab_size, embed_dim):
        self.vocab_size = check_positive_int(vocab_size, "vocab_size")
        self.embed_dim = check_positive_int(embed_dim, "embed_dim")
        self.W = np.random.randn(self.vocab_size, self.embed_dim) * 0.02
        self.grad_W = np.zeros_like(self.W)
        self.cache = None

    def forward(self, tokens):
        """tokens: (B, T) int -> (B, T, D)"""
        check_tokens(tokens, self.vocab_size)
        # BEGIN SOLUTION
        self.cache = tokens
        return self.W[tokens]  # (B, T, D)
        # END SOLUTION

    def backward(self, grad_output):
        """grad_output: (B, T, D) -> None (token ids have no gradient); adds into grad_W."""
        # BEGIN SOLUTION
        tokens = self.cache
        # np.add.at accumulates repeated ids; grad_W[tokens] += g would keep only one of them
        np.add.at(self.grad_W, tokens.reshape(-1), grad_output.reshape(-1, self.embed_dim))
        return None
        # END SOLUTION

    def get_parameters(self):
        return [(self.W, self.grad_W)]

    def zero_grad(self):
        self.grad_W.fill(0.0)


class PositionalEncoding:
    """Adds the fixed sinusoidal position table of "Attention Is All You Need"; no parameters.

    pe: (max_seq_len, D), pe[p, 2i] = sin(p / 10000^(2i/D)), pe[p, 2i+1] = cos(p / 10000^(2i/D))
    """

    def __init__(self, embed_dim, max_seq_len=50):
        self.embed_dim = check_positive_int(embed_dim, "embed_dim")
        self.max_seq_len = check_positive_int(max_seq_len, "max_seq_len")
        self.pe = sinusoidal_table(self.max_seq_len, self.embed_dim)

    def forward(self, x):
        """x: (B, T, D) -> x + pe[:T], (B, T, D)"""
        check_array(x, "x", ndim=3, last_dim=self.embed_dim)
        if x.shape[1] > self.max_seq_len:
            raise ValueError(f"sequence length {x.shape[1]} exceeds max_seq_len={self.max_seq_len}")
        # BEGIN SOLUTION
        return x + self.pe[: x.shape[1]].astype(x.dtype, copy=False)  # keeps float32 input float32
        # END SOLUTION

    def backward(self, grad_output):
        """grad_output: (B, T, D) -> (B, T, D): adding a constant passes the gradient through."""
        # BEGIN WORKED EXAMPLE
        # d(x + pe)/dx is the identity, so the upstream gradient flows back unchanged (pe is no parameter).
        return grad_output
        # END WORKED EXAMPLE

    def get_parameters(self):
        return []

    def zero_grad(self):
        pass


def sinusoidal_table(max_seq_len, embed_dim):
    """The (max_seq_len, D) sinusoidal table; an odd D keeps the sine of its last pair."""
    # BEGIN SOLUTION
    positions = np.arange(max_seq_len)[:, None]  # (P, 1)
    even = np.arange(0, embed_dim, 2)  # the 2i of each sine/cosine pair
    angles = positions / 10000.0 ** (even / embed_dim)  # (P, ceil(D/2))
    pe = np.zeros((max_seq_len, embed_dim))
    pe[:, 0::2] = np.sin(angles)
    pe[:, 1::2] = np.cos(angles[:, : embed_dim // 2])
    return pe
    # END SOLUTION

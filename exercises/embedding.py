# Generated from solutions/ by `python -m kata.authoring.stubs`: your work goes where NotImplementedError is raised.
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
        # EXERCISE lesson01 "Embedding lookup": write Embedding.forward here
        raise NotImplementedError('Embedding.forward (lesson 01) is not implemented yet: reread lessons/01_embeddings.md, section "Embedding lookup"')

    def backward(self, grad_output):
        """grad_output: (B, T, D) -> None (token ids have no gradient); adds into grad_W."""
        # EXERCISE lesson01 "Embedding backward": write Embedding.backward here
        raise NotImplementedError('Embedding.backward (lesson 01) is not implemented yet: reread lessons/01_embeddings.md, section "Embedding backward"')

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
        # EXERCISE lesson01 "Sinusoidal positions": write PositionalEncoding.forward here
        raise NotImplementedError('PositionalEncoding.forward (lesson 01) is not implemented yet: reread lessons/01_embeddings.md, section "Sinusoidal positions"')

    def backward(self, grad_output):
        """grad_output: (B, T, D) -> (B, T, D): adding a constant passes the gradient through."""
        # Worked example, given complete: read it, it shows how the others are done.
        # d(x + pe)/dx is the identity, so the upstream gradient flows back unchanged (pe is no parameter).
        return grad_output

    def get_parameters(self):
        return []

    def zero_grad(self):
        pass


def sinusoidal_table(max_seq_len, embed_dim):
    """The (max_seq_len, D) sinusoidal table; an odd D keeps the sine of its last pair."""
    # EXERCISE lesson01 "Sinusoidal positions": write sinusoidal_table here
    raise NotImplementedError('sinusoidal_table (lesson 01) is not implemented yet: reread lessons/01_embeddings.md, section "Sinusoidal positions"')

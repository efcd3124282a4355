# Generated from solutions/ by `python -m kata.authoring.stubs`: your work goes where NotImplementedError is raised.
"""Lesson 05: the whole encoder: embed, add positions, stack blocks, pool the first token, project."""

import numpy as np

from .backprop import transformer_backward, transformer_parameters, transformer_zero_grad
from .block import TransformerBlock
from .data import PAD_TOKEN
from .embedding import Embedding, PositionalEncoding
from .layers import Linear
from .validation import check_mask, check_tokens


class Transformer:
    """tokens (B, T) -> logits (B, V), read from the first token's final hidden state."""

    def __init__(self, vocab_size=20, embed_dim=64, num_heads=4, num_layers=2, ffn_dim=256,
                 max_seq_len=50):
        self.vocab_size = vocab_size
        self.embed_dim = embed_dim
        self.embedding = Embedding(vocab_size, embed_dim)
        self.positional_encoding = PositionalEncoding(embed_dim, max_seq_len)
        self.blocks = [TransformerBlock(embed_dim, num_heads, ffn_dim) for _ in range(num_layers)]
        self.output = Linear(embed_dim, vocab_size)
        self.tokens_shape = None  # (B, T) of the last forward, for backward

    def forward(self, tokens, mask=None):
        """tokens: (B, T) int, mask: (B, T) bool or None (None means tokens != PAD) -> logits (B, V)"""
        check_tokens(tokens, self.vocab_size)
        mask = tokens != PAD_TOKEN if mask is None else mask
        check_mask(mask, tokens.shape)
        self.tokens_shape = tokens.shape
        # EXERCISE lesson05 "Stacking, pooling and projecting": write Transformer.forward here
        raise NotImplementedError('Transformer.forward (lesson 05) is not implemented yet: reread lessons/05_output_projection.md, section "Stacking, pooling and projecting"')

    def backward(self, grad_logits):
        """grad_logits: (B, V) -> None; adds into every parameter's gradient (lesson 07)."""
        return transformer_backward(self, grad_logits)

    def get_parameters(self):
        """Every (param, grad) pair of the model, in a fixed order (lesson 07)."""
        return transformer_parameters(self)

    def zero_grad(self):
        transformer_zero_grad(self)

    def num_parameters(self):
        return sum(param.size for param, _ in self.get_parameters())

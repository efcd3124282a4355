# Generated from solutions/ by `python -m kata.authoring.stubs`: your work goes where NotImplementedError is raised.
"""Lesson 14: a KV cache, so that each new token costs one position's work instead of the whole prefix's."""

import numpy as np

from .attention import scaled_dot_product_attention
from .data import PAD_TOKEN
from .validation import check_array, check_positive_int, check_tokens


class KVCache:
    """The keys and values every causal attention layer has computed so far, for a batch of sequences.

    keys[l], values[l]: (B, H, capacity, Dh) for layer l; lengths: (B,) int, how many positions of each
    row are filled. Row b's next token goes to position lengths[b]; slots from lengths[b] on hold nothing
    that may be read (they are masked, and overwritten when the row grows).
    """

    def __init__(self, batch_size, num_layers, num_heads, head_dim, capacity):
        shape = (check_positive_int(batch_size, "batch_size"), check_positive_int(num_heads, "num_heads"),
                 check_positive_int(capacity, "capacity"), check_positive_int(head_dim, "head_dim"))
        self.keys = [np.zeros(shape) for _ in range(check_positive_int(num_layers, "num_layers"))]
        self.values = [np.zeros(shape) for _ in range(num_layers)]
        self.lengths = np.zeros(batch_size, dtype=np.int64)
        self.capacity = capacity


def cached_attention(attention, x, keys, values, lengths):
    """Causal self-attention for t new positions of each row, reading earlier positions from the cache.

    attention: a CausalSelfAttention (its W_q, W_k, W_v, W_o and num_heads are used, nothing else)
    x: (B, t, D), the inputs at positions lengths[b] .. lengths[b] + t - 1 of row b
    keys, values: (B, H, capacity, Dh); the new keys and values are written into them at those positions
    lengths: (B,) int, the positions already filled (not changed here)
    returns: (B, t, D), what attention.forward would give at those positions for the whole prefix
    """
    check_array(x, "x", ndim=3, last_dim=attention.embed_dim)
    # EXERCISE lesson14 "Attention over the cache": write cached_attention here
    raise NotImplementedError('cached_attention (lesson 14) is not implemented yet: reread lessons/14_kv_cache.md, section "Attention over the cache"')


def decode_step(model, tokens, cache):
    """Run t new tokens of each row through a DecoderLM, extending cache; their logits (B, t, V).

    tokens: (B, t) int; cache: a KVCache from model.new_cache(B); on return cache.lengths has grown by t
    """
    check_tokens(tokens, model.vocab_size)
    if tokens.shape[0] != len(cache.lengths):
        raise ValueError(f"tokens has {tokens.shape[0]} rows, the cache {len(cache.lengths)}")
    if cache.lengths.max() + tokens.shape[1] > cache.capacity:
        raise ValueError(f"the cache holds {cache.capacity} positions: cannot add {tokens.shape[1]} after "
                         f"{cache.lengths.max()}")
    # EXERCISE lesson14 "A decoding step": write decode_step here
    raise NotImplementedError('decode_step (lesson 14) is not implemented yet: reread lessons/14_kv_cache.md, section "A decoding step"')


class CachedDecoder:
    """RecomputeDecoder's interface (lesson 13) on a KV cache: the prompts run through the model once, then
    each append runs one new position per row.

    next_logits() -> (B, V): the logits at each row's last token; append(tokens (B,)) adds one token per row.
    """

    def __init__(self, model, prompts):
        self.model = model
        self.cache = model.new_cache(len(prompts))
        lengths = np.array([len(p) for p in prompts])
        tokens = np.full((len(prompts), lengths.max()), PAD_TOKEN, dtype=np.int64)
        for row, prompt in enumerate(prompts):
            tokens[row, : len(prompt)] = prompt
        # EXERCISE lesson14 "Generating with the cache": write CachedDecoder.__init__ here
        raise NotImplementedError('CachedDecoder.__init__ (lesson 14) is not implemented yet: reread lessons/14_kv_cache.md, section "Generating with the cache"')

    def next_logits(self):
        # EXERCISE lesson14 "Generating with the cache": write CachedDecoder.next_logits here
        raise NotImplementedError('CachedDecoder.next_logits (lesson 14) is not implemented yet: reread lessons/14_kv_cache.md, section "Generating with the cache"')

    def append(self, tokens):
        # EXERCISE lesson14 "Generating with the cache": write CachedDecoder.append here
        raise NotImplementedError('CachedDecoder.append (lesson 14) is not implemented yet: reread lessons/14_kv_cache.md, section "Generating with the cache"')

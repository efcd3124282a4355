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
    # BEGIN SOLUTION
    B, t, D = x.shape
    H, Dh = attention.num_heads, attention.head_dim
    positions = lengths[:, None] + np.arange(t)[None, :]  # (B, t), each new token's place in its row
    rows = np.arange(B)[:, None]

    def heads(W):
        return (x @ W).reshape(B, t, H, Dh)  # (B, t, H, Dh)

    keys.transpose(0, 2, 1, 3)[rows, positions] = heads(attention.W_k)  # writes through the view
    values.transpose(0, 2, 1, 3)[rows, positions] = heads(attention.W_v)
    Q = heads(attention.W_q).transpose(0, 2, 1, 3)  # (B, H, t, Dh)
    allowed = np.arange(keys.shape[2])[None, None, :] <= positions[:, :, None]  # (B, t, capacity)
    out, _ = scaled_dot_product_attention(Q, keys, values, allowed[:, None])  # (B, H, t, Dh)
    return out.transpose(0, 2, 1, 3).reshape(B, t, D) @ attention.W_o
    # END SOLUTION


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
    # BEGIN SOLUTION
    B, t = tokens.shape
    positions = cache.lengths[:, None] + np.arange(t)[None, :]  # (B, t)
    table = model.positional_encoding.forward(np.zeros((1, int(positions.max()) + 1, model.embed_dim)))[0]
    x = model.embedding.forward(tokens) + table[positions]  # (B, t, D), each token at its own position
    for layer, block in enumerate(model.blocks):
        attended = cached_attention(block.attention, block.norm1.forward(x), cache.keys[layer],
                                    cache.values[layer], cache.lengths)
        h = x + attended
        x = h + block.feed_forward.forward(block.norm2.forward(h))
    h = model.norm.forward(x)
    cache.lengths += t
    return h @ model.embedding.W.T if model.output is None else model.output.forward(h)
    # END SOLUTION


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
        # BEGIN SOLUTION
        logits = model.decode_step(tokens, self.cache)  # the prompts at once, right-padded: (B, T, V)
        self.cache.lengths[:] = lengths  # a short row's padding is never read, and its next token overwrites it
        self.logits = logits[np.arange(len(prompts)), lengths - 1]
        # END SOLUTION

    def next_logits(self):
        # BEGIN SOLUTION
        return self.logits
        # END SOLUTION

    def append(self, tokens):
        # BEGIN SOLUTION
        self.logits = self.model.decode_step(np.asarray(tokens, dtype=np.int64)[:, None], self.cache)[:, 0]
        # END SOLUTION

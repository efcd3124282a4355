"""Wrong implementations of lesson 14 (a KV cache: cached_attention, decode_step, CachedDecoder)."""

from meta.catalogue import Mutant

WRITE_K = "keys.transpose(0, 2, 1, 3)[rows, positions] = heads(attention.W_k)"
WRITE_V = "values.transpose(0, 2, 1, 3)[rows, positions] = heads(attention.W_v)"
ALLOWED = "allowed = np.arange(keys.shape[2])[None, None, :] <= positions[:, :, None]"
JOINED = "return out.transpose(0, 2, 1, 3).reshape(B, t, D) @ attention.W_o"
EMBED = "x = model.embedding.forward(tokens) + table[positions]"
APPEND = "self.logits = self.model.decode_step(np.asarray(tokens, dtype=np.int64)[:, None], self.cache)[:, 0]"
RECOMPUTE = """rows = np.arange(len(self.lengths))
        self.tokens = np.pad(self.tokens, ((0, 0), (0, 1)), constant_values=PAD_TOKEN)
        self.tokens[rows, self.lengths] = tokens
        self.lengths = self.lengths + 1
        logits = self.model.decode_step(self.tokens, self.model.new_cache(len(rows)))  # the whole prefix again
        self.logits = logits[rows, self.lengths - 1]"""

MUTANTS = [
    # cached_attention
    Mutant("kv-written-at-lengths-plus-one", "14", "kv_cache.py",
           "the new keys and values written one slot too far (at lengths + 1): position lengths[b] keeps junk",
           WRITE_K, WRITE_K.replace("positions]", "positions + 1]"),
           more=(("kv_cache.py", WRITE_V, WRITE_V.replace("positions]", "positions + 1]")),)),
    Mutant("kv-mask-whole-capacity", "14", "kv_cache.py",
           "every slot of the cache attended to, the empty ones (zeros, or an earlier row's leftovers) included",
           ALLOWED, "allowed = np.ones((B, t, keys.shape[2]), dtype=bool)"),
    Mutant("kv-mask-strict", "14", "kv_cache.py",
           "the mask key position < query position: a token does not see itself",
           ALLOWED, ALLOWED.replace("<=", "<")),
    Mutant("kv-mask-not-causal-within-chunk", "14", "kv_cache.py",
           "the mask stops at the end of the new chunk (lengths + t) for every query: with t > 1 the first new "
           "tokens see the later ones",
           ALLOWED, "allowed = np.arange(keys.shape[2])[None, None, :] < (lengths + t)[:, None, None]"),
    Mutant("kv-keys-values-swapped", "14", "kv_cache.py",
           "the keys cache filled with x @ W_v and the values cache with x @ W_k",
           WRITE_K, WRITE_K.replace("W_k", "W_v"), more=(("kv_cache.py", WRITE_V, WRITE_V.replace("W_v", "W_k")),)),
    Mutant("kv-input-cached-not-keys", "14", "kv_cache.py",
           "the (normalised) input x cached in place of its keys: the projection W_k never applied",
           WRITE_K, "keys.transpose(0, 2, 1, 3)[rows, positions] = x.reshape(B, t, H, Dh)"),
    Mutant("kv-heads-joined-without-transpose", "14", "kv_cache.py",
           "the heads (B, H, t, Dh) reshaped to (B, t, D) without moving the head axis back (right only when t = 1)",
           JOINED, "return out.reshape(B, t, D) @ attention.W_o"),
    Mutant("kv-output-projection-skipped", "14", "kv_cache.py",
           "the joined heads returned without the output projection W_o",
           JOINED, "return out.transpose(0, 2, 1, 3).reshape(B, t, D)"),
    # decode_step
    Mutant("kv-positions-from-zero", "14", "kv_cache.py",
           "the positional encoding of positions 0 .. t-1 added at every step, not the tokens' own positions",
           EMBED, "x = model.embedding.forward(tokens) + table[np.arange(t)][None]"),
    Mutant("kv-positions-of-longest-row", "14", "kv_cache.py",
           "every row's new tokens placed at the longest row's positions (cache.lengths.max()), not their own",
           "positions = cache.lengths[:, None] + np.arange(t)[None, :]  # (B, t)",
           "positions = cache.lengths.max() + np.arange(t)[None, :]  # (1, t)"),
    Mutant("kv-lengths-not-advanced", "14", "kv_cache.py",
           "cache.lengths never advanced: every step overwrites the same slots",
           "    cache.lengths += t\n", ""),
    Mutant("kv-lengths-advanced-before-the-layers", "14", "kv_cache.py",
           "cache.lengths advanced before the blocks run, so the new keys go t slots too far",
           "    for layer, block in enumerate(model.blocks):\n",
           "    cache.lengths += t\n    for layer, block in enumerate(model.blocks):\n",
           more=(("kv_cache.py", "    h = model.norm.forward(x)\n    cache.lengths += t\n",
                  "    h = model.norm.forward(x)\n"),)),
    Mutant("kv-final-norm-skipped", "14", "kv_cache.py",
           "decode_step goes from the last block straight to the output, without the final LayerNorm",
           "h = model.norm.forward(x)", "h = x"),
    Mutant("kv-residual-from-normalised-input", "14", "kv_cache.py",
           "the attention's residual added to norm1(x) instead of x",
           "h = x + attended", "h = block.norm1.forward(x) + attended"),
    Mutant("kv-tied-output-transposed-wrong", "14", "kv_cache.py",
           "a tied model's logits read from the embedding of the first D tokens (h @ W[:D]) instead of h @ W.T",
           "return h @ model.embedding.W.T if model.output is None else model.output.forward(h)",
           "return h @ model.embedding.W[: model.embed_dim] if model.output is None else model.output.forward(h)"),
    # CachedDecoder
    Mutant("kv-prefill-lengths-not-reset", "14", "kv_cache.py",
           "after the padded prefill the lengths stay at the padded length: a short row's next token goes after "
           "its padding, and attends to it",
           "        self.cache.lengths[:] = lengths  # a short row",
           "        # self.cache.lengths[:] = lengths  # a short row"),
    Mutant("kv-prefill-logits-at-padding", "14", "kv_cache.py",
           "the prompt's next-token logits taken at the last padded position instead of each row's last token",
           "self.logits = logits[np.arange(len(prompts)), lengths - 1]", "self.logits = logits[:, -1]"),
    Mutant("kv-append-recomputes", "14", "kv_cache.py",
           "append runs the whole prefix through a fresh cache at every step: right logits, but no cache used",
           APPEND, RECOMPUTE,
           more=(("kv_cache.py", "        self.logits = logits[np.arange(len(prompts)), lengths - 1]\n",
                  "        self.logits = logits[np.arange(len(prompts)), lengths - 1]\n"
                  "        self.tokens, self.lengths = tokens, lengths\n"),)),
]

"""Wrong implementations of lesson 11 (causal_mask, CausalSelfAttention, PreLNBlock)."""

from meta.catalogue import Mutant

MASK = "    return np.tril(np.ones((T, T), dtype=bool))\n"
COMBINE = "            allowed = allowed & mask[:, None, None, :]"
ATTEND = "        heads, weights = scaled_dot_product_attention(*projected, allowed)"
FORWARD = ("        h = x + self.attention.forward(self.norm1.forward(x), mask)\n"
           "        return h + self.feed_forward.forward(self.norm2.forward(h))\n")
BACKWARD = ("        d_h = grad_output + self.norm2.backward(self.feed_forward.backward(grad_output))\n"
            "        return d_h + self.norm1.backward(self.attention.backward(d_h))\n")

MUTANTS = [
    # ---------------------------------------------------------------- causal_mask
    Mutant("causal-mask-upper-triangle", "11", "causal.py",
           "the upper triangle: each query reads the future instead of the past",
           MASK, "    return np.triu(np.ones((T, T), dtype=bool))\n"),
    Mutant("causal-mask-strict", "11", "causal.py",
           "the strict lower triangle: a token may not read itself (and the first one reads nothing)",
           MASK, "    return np.tril(np.ones((T, T), dtype=bool), k=-1)\n"),
    Mutant("causal-mask-floats", "11", "causal.py",
           "a float mask of ones and zeros (np.tri) instead of a bool one",
           MASK, "    return np.tri(T)\n"),
    # ---------------------------------------------------------------- CausalSelfAttention.forward
    Mutant("causal-or-padding", "11", "causal.py",
           "the causal and padding masks combined by OR: a real later key, or any padded earlier one, is read",
           COMBINE, "            allowed = allowed | mask[:, None, None, :]"),
    Mutant("causal-padding-on-queries", "11", "causal.py",
           "the padding mask put on the queries' axis instead of the keys'",
           COMBINE, "            allowed = allowed & mask[:, None, :, None]"),
    Mutant("causal-mask-ignores-padding", "11", "causal.py",
           "the padding mask forgotten: only the causal mask is applied",
           COMBINE, "            allowed = allowed"),
    Mutant("causal-mask-after-softmax", "11", "causal.py",
           "the softmax over every key, the future's weights zeroed afterwards (rows no longer sum to 1)",
           ATTEND,
           "        heads, weights = scaled_dot_product_attention(*projected)\n"
           "        weights = weights * allowed\n"
           "        heads = weights @ projected[2]"),
    Mutant("causal-renormalised-full-row", "11", "causal.py",
           "exp of every score shifted by the whole row's maximum (later keys included), then masked and "
           "renormalised: right in exact arithmetic, but the future decides the rounding of the past",
           ATTEND,
           "        Q, K, V = projected\n"
           "        scores = Q @ K.swapaxes(-1, -2) / np.sqrt(Q.shape[-1])\n"
           "        weights = np.exp(scores - scores.max(axis=-1, keepdims=True)) * allowed\n"
           "        weights = weights / weights.sum(axis=-1, keepdims=True)\n"
           "        heads = weights @ V"),
    # ---------------------------------------------------------------- CausalSelfAttention.backward
    Mutant("causal-backward-unmasked-weights", "11", "causal.py",
           "backward recomputes the weights from Q and K without the mask",
           "        x, (Q, K, V), weights, joined = self.cache\n",
           "        x, (Q, K, V), weights, joined = self.cache\n"
           "        scores = Q @ K.swapaxes(-1, -2) / np.sqrt(Q.shape[-1])\n"
           "        weights = np.exp(scores - scores.max(axis=-1, keepdims=True))\n"
           "        weights = weights / weights.sum(axis=-1, keepdims=True)\n"),
    Mutant("causal-backward-assigns", "11", "causal.py",
           "the weight gradients assigned (=) instead of added (+=)",
           'self.grad_W_o += np.einsum("btd,bte->de", joined, grad_output)',
           'self.grad_W_o[...] = np.einsum("btd,bte->de", joined, grad_output)'),
    Mutant("causal-backward-only-through-q", "11", "causal.py",
           "dx only through the queries' projection (x fed K and V too)",
           "            dx += d_proj @ W.T\n",
           "            dx += d_proj @ W.T if W is self.W_q else 0.0\n"),
    # ---------------------------------------------------------------- PreLNBlock.forward
    Mutant("pre-ln-is-post-ln", "11", "causal.py",
           "Post-LN (lesson 04) instead: the norm after each residual sum",
           FORWARD,
           "        h = self.norm1.forward(x + self.attention.forward(x, mask))\n"
           "        return self.norm2.forward(h + self.feed_forward.forward(h))\n"),
    Mutant("pre-ln-residual-from-normalised", "11", "causal.py",
           "the residual adds the normalised input: norm1(x) + attention(norm1(x))",
           FORWARD,
           "        n1 = self.norm1.forward(x)\n"
           "        h = n1 + self.attention.forward(n1, mask)\n"
           "        n2 = self.norm2.forward(h)\n"
           "        return n2 + self.feed_forward.forward(n2)\n"),
    Mutant("pre-ln-norm2-on-x", "11", "causal.py",
           "norm2 applied to the block's input x instead of h",
           "        return h + self.feed_forward.forward(self.norm2.forward(h))\n",
           "        return h + self.feed_forward.forward(self.norm2.forward(x))\n"),
    Mutant("pre-ln-mask-not-passed", "11", "causal.py",
           "the mask not passed on to attention",
           "self.attention.forward(self.norm1.forward(x), mask)", "self.attention.forward(self.norm1.forward(x))"),
    Mutant("pre-ln-causal-flag-ignored", "11", "causal.py",
           "causal=False ignored: the block always builds a CausalSelfAttention",
           "(CausalSelfAttention if self.causal else MultiHeadAttention)(embed_dim, num_heads)",
           "CausalSelfAttention(embed_dim, num_heads)", section="The Pre-LN block"),
    Mutant("pre-ln-residual-in-place", "11", "causal.py",
           "the residual added into x in place (x += ...)",
           "        h = x + self.attention.forward(self.norm1.forward(x), mask)\n",
           "        h = x\n        h += self.attention.forward(self.norm1.forward(x), mask)\n", says="in place"),
    # ---------------------------------------------------------------- PreLNBlock.backward
    Mutant("pre-ln-backward-drops-ffn-skip", "11", "causal.py",
           "backward drops the skip path around the feed-forward network",
           BACKWARD,
           "        d_h = self.norm2.backward(self.feed_forward.backward(grad_output))\n"
           "        return d_h + self.norm1.backward(self.attention.backward(d_h))\n"),
    Mutant("pre-ln-backward-attention-gets-upstream", "11", "causal.py",
           "attention's backward given grad_output instead of d_h (the feed-forward branch's share forgotten)",
           BACKWARD,
           "        d_h = grad_output + self.norm2.backward(self.feed_forward.backward(grad_output))\n"
           "        return d_h + self.norm1.backward(self.attention.backward(grad_output))\n"),
    Mutant("pre-ln-backward-post-ln", "11", "causal.py",
           "lesson 04's Post-LN backward kept for the Pre-LN block (a norm on each skip path)",
           BACKWARD,
           "        d_sum2 = self.norm2.backward(grad_output)\n"
           "        d_h = d_sum2 + self.feed_forward.backward(d_sum2)\n"
           "        d_sum1 = self.norm1.backward(d_h)\n"
           "        return d_sum1 + self.attention.backward(d_sum1)\n"),
]

"""Correct implementations that differ from the reference: each an edit of solutions/ (as a Mutant is) that computes
the same function another way. meta/test_variants.py requires each to get full marks on its lesson, on the public
tests and on hidden variants: the tests must accept every correct program, not only the reference's lines.

    build(equivalent, folder)        # meta.catalogue.build: a copy of solutions/ with the edits applied
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Equivalent:
    id: str  # unique slug
    lesson: str  # "03": the lesson whose tests it must pass
    file: str  # the file of solutions/ to edit
    description: str  # how it differs from the reference, and why it is the same function
    find: str  # text that occurs exactly once in solutions/<file>
    replace: str
    more: tuple = ()  # further edits (file, find, replace), each applying exactly once

    def edits(self):
        """Every (file, find, replace) edit, as Mutant.edits gives them (meta.catalogue.build applies them)."""
        return ((self.file, self.find, self.replace), *self.more)


EQUIVALENTS = [
    # ---------------------------------------------------------------- 00: data
    Equivalent("tokenize-map-and-loop-batch", "00", "data.py",
               "tokenize through map(VOCAB.__getitem__), and create_batch filling each padded row in a loop",
               "    return [VOCAB[tok] for tok in text.split()]",
               "    return list(map(VOCAB.__getitem__, text.split()))",
               more=(("data.py",
                      "    tokens[mask] = np.concatenate([np.asarray(seq, dtype=np.int64) for seq, _ in examples])",
                      "    for row, (seq, _) in enumerate(examples):\n"
                      "        tokens[row, :len(seq)] = seq"),
                     ("data.py", '    return " ".join(ID_TO_TOKEN[i] for i in ids if i != PAD_TOKEN)',
                      '    kept = [ID_TO_TOKEN[i] for i in filter(lambda i: i != PAD_TOKEN, ids)]\n'
                      '    return " ".join(kept)'))),
    # ---------------------------------------------------------------- 01: embeddings
    Equivalent("embedding-backward-loop", "01", "embedding.py",
               "Embedding.backward adds each position's gradient into its token's row in a Python loop "
               "(np.add.at does the same additions, in the same order)",
               "        np.add.at(self.grad_W, tokens.reshape(-1), grad_output.reshape(-1, self.embed_dim))",
               "        for token, row in zip(tokens.reshape(-1), grad_output.reshape(-1, self.embed_dim)):\n"
               "            self.grad_W[token] += row"),
    Equivalent("positional-encoding-exp-log", "01", "embedding.py",
               "the sinusoid's frequencies as exp(-ln(10000) * 2i / D) rather than a power of 10000",
               "    angles = positions / 10000.0 ** (even / embed_dim)  # (P, ceil(D/2))",
               "    angles = positions * np.exp(-np.log(10000.0) * even / embed_dim)  # (P, ceil(D/2))"),
    # ---------------------------------------------------------------- 02: attention
    Equivalent("softmax-log-sum-exp", "02", "attention.py",
               "softmax as exp(x - logsumexp(x)), the log-sum-exp shifted by the maximum",
               "    e = np.exp(shifted)\n    return e / e.sum(axis=axis, keepdims=True)",
               "    return np.exp(shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True)))"),
    Equivalent("attention-einsum", "02", "attention.py",
               "attention's scores, output and gradients with np.einsum over named axes instead of @ and swapaxes",
               "    scores = Q @ K.swapaxes(-1, -2) / math.sqrt(Q.shape[-1])  # (..., T_q, T_k)",
               '    scores = np.einsum("...qd,...kd->...qk", Q, K) / math.sqrt(Q.shape[-1])  # (..., T_q, T_k)',
               more=(("attention.py", "    return weights @ V, weights  # (..., T_q, Dh), (..., T_q, T_k)",
                      '    return np.einsum("...qk,...kd->...qd", weights, V), weights'),
                     ("attention.py", "    dK = d_scores.swapaxes(-1, -2) @ Q  # (..., T_k, Dh)",
                      '    dK = np.einsum("...qk,...qd->...kd", d_scores, Q)'),
                     ("attention.py", "    return y * (grad_output - (grad_output * y).sum(axis=axis, keepdims=True))",
                      "    return y * grad_output - y * (grad_output * y).sum(axis=axis, keepdims=True)"))),
    # ---------------------------------------------------------------- 03: layers
    Equivalent("layernorm-np-var", "03", "layers.py",
               "LayerNorm's (biased) variance from np.var, and ReLU through np.where",
               "        var = (centered * centered).mean(axis=-1, keepdims=True)  # (..., 1), biased: divided by D",
               "        var = x.var(axis=-1, keepdims=True)  # (..., 1): np.var divides by D",
               more=(("layers.py", "        return np.maximum(x, 0.0)", "        return np.where(x > 0, x, 0.0)"),)),
    Equivalent("linear-batched-matmul", "03", "layers.py",
               "Linear.forward multiplies the (..., in) input by W directly (matmul broadcasts over the leading axes)",
               "        out = x.reshape(-1, self.in_dim) @ self.W  # (N, out): one 2-D product is faster than a stack\n"
               "        if self.b is not None:\n"
               "            out += self.b\n"
               "        return out.reshape(*x.shape[:-1], self.out_dim)",
               "        out = np.matmul(x, self.W)\n"
               "        return out if self.b is None else out + self.b"),
    # ---------------------------------------------------------------- 04: block
    Equivalent("block-named-steps", "04", "block.py",
               "the block's sublayers computed one by one into named arrays, each residual sum written the other "
               "way round",
               "        h = self.norm1.forward(x + self.attention.forward(x, mask))\n"
               "        return self.norm2.forward(h + self.feed_forward.forward(h))",
               "        attended = self.attention.forward(x, mask)\n"
               "        h = self.norm1.forward(attended + x)\n"
               "        fed = self.feed_forward.forward(h)\n"
               "        return self.norm2.forward(fed + h)",
               more=(("block.py", "        return d_sum1 + self.attention.backward(d_sum1)",
                      "        through_attention = self.attention.backward(d_sum1)\n"
                      "        return through_attention + d_sum1"),)),
    # ---------------------------------------------------------------- 05: model
    Equivalent("model-forward-steps", "05", "model.py",
               "the model's forward pass with the embedding and the positions in two statements, and the first "
               "token's state taken as x[:, 0]",
               "        x = self.positional_encoding.forward(self.embedding.forward(tokens))  # (B, T, D)",
               "        x = self.embedding.forward(tokens)\n        x = self.positional_encoding.forward(x)",
               more=(("model.py", "        return self.output.forward(x[:, 0, :])",
                      "        first = x[:, 0]\n        return self.output.forward(first)"),)),
    # ---------------------------------------------------------------- 06: loss
    Equivalent("cross-entropy-log-softmax", "06", "loss.py",
               "the cross-entropy through log-softmax written as logits - logsumexp(logits), and its gradient "
               "from a one-hot matrix",
               "        shifted = logits - logits.max(axis=1, keepdims=True)  # log-sum-exp without overflow\n"
               "        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (B, V)",
               "        top = logits.max(axis=1, keepdims=True)\n"
               "        log_sum_exp = top + np.log(np.exp(logits - top).sum(axis=1, keepdims=True))  # (B, 1)\n"
               "        log_probs = logits - log_sum_exp  # (B, V): log-softmax",
               more=(("loss.py",
                      "        grad = probs.copy()\n        grad[np.arange(len(targets)), targets] -= 1.0",
                      "        grad = probs - np.eye(probs.shape[1])[targets]"),)),
    # ---------------------------------------------------------------- 07: backprop
    Equivalent("parameters-comprehension-flat-gradient", "07", "backprop.py",
               "the model's parameters gathered by one comprehension over its parts, and the numerical gradient "
               "walking x by flat index",
               "    pairs = model.embedding.get_parameters()\n"
               "    for block in model.blocks:\n"
               "        pairs += block.get_parameters()\n"
               "    return pairs + model.output.get_parameters()",
               "    parts = [model.embedding, *model.blocks, model.output]\n"
               "    return [pair for part in parts for pair in part.get_parameters()]",
               more=(("backprop.py", "    for index in np.ndindex(x.shape):",
                      "    for flat in range(x.size):\n        index = np.unravel_index(flat, x.shape)"),)),
    # ---------------------------------------------------------------- 08: optimizers and training
    Equivalent("adam-folded-bias-correction", "08", "optim.py",
               "Adam with the bias corrections folded into the step size: lr * sqrt(c2) / c1 * m / (sqrt(v) + "
               "eps * sqrt(c2)), the same number as lr * (m / c1) / (sqrt(v / c2) + eps)",
               "            param -= self.learning_rate * (m / correction1) / (np.sqrt(v / correction2) + self.epsilon)",
               "            step_size = self.learning_rate * np.sqrt(correction2) / correction1\n"
               "            param -= step_size * m / (np.sqrt(v) + self.epsilon * np.sqrt(correction2))",
               more=(("training.py", "        correct += int((logits.argmax(axis=1) == batch_targets).sum())",
                      "        correct += int(np.count_nonzero(logits.argmax(axis=1) == batch_targets))"),)),
    # ---------------------------------------------------------------- 09: dynamics
    Equivalent("dynamics-other-formulas", "09", "dynamics.py",
               "the cosine schedule as cos^2(pi p / 2) (= (1 + cos(pi p)) / 2), the entropy with np.log's where=, "
               "and the gradient norm from np.vdot",
               "    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress))",
               "    return min_lr + (base_lr - min_lr) * math.cos(math.pi * progress / 2) ** 2",
               more=(("dynamics.py",
                      "    safe = np.where(weights > 0, weights, 1.0)  # log(1) = 0 where the weight is 0\n"
                      "    return -(weights * np.log(safe)).sum(axis=-1)",
                      "    logs = np.log(weights, out=np.zeros(np.shape(weights)), where=weights > 0)\n"
                      "    return -(weights * logs).sum(axis=-1)"),
                     ("dynamics.py", "    norm = math.sqrt(sum(float((g * g).sum()) for g in grads))",
                      "    norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))"))),
    # ---------------------------------------------------------------- 14: a KV cache
    Equivalent("kv-loops-and-embedding-rows", "14", "kv_cache.py",
               "cached_attention writes each row's keys and values in a loop over the rows and attends row by "
               "row over the filled slots only; decode_step reads the embedding rows and the sinusoidal table "
               "directly (never calling embedding.forward) and the tied output through np.einsum",
               "    keys.transpose(0, 2, 1, 3)[rows, positions] = heads(attention.W_k)  # writes through the view\n"
               "    values.transpose(0, 2, 1, 3)[rows, positions] = heads(attention.W_v)\n"
               "    Q = heads(attention.W_q).transpose(0, 2, 1, 3)  # (B, H, t, Dh)\n"
               "    allowed = np.arange(keys.shape[2])[None, None, :] <= positions[:, :, None]  # (B, t, capacity)\n"
               "    out, _ = scaled_dot_product_attention(Q, keys, values, allowed[:, None])  # (B, H, t, Dh)\n",
               "    new_k, new_v = heads(attention.W_k), heads(attention.W_v)\n"
               "    Q = heads(attention.W_q).transpose(0, 2, 1, 3)  # (B, H, t, Dh)\n"
               "    out = np.zeros((B, H, t, Dh))\n"
               "    for b in range(B):\n"
               "        start, end = lengths[b], lengths[b] + t\n"
               "        keys[b, :, start:end] = new_k[b].transpose(1, 0, 2)\n"
               "        values[b, :, start:end] = new_v[b].transpose(1, 0, 2)\n"
               "        allowed = np.arange(end)[None, :] <= (start + np.arange(t))[:, None]  # (t, end)\n"
               "        out[b], _ = scaled_dot_product_attention(Q[b], keys[b, :, :end], values[b, :, :end], "
               "allowed)\n",
               more=(("kv_cache.py",
                      "    table = model.positional_encoding.forward(np.zeros((1, int(positions.max()) + 1, "
                      "model.embed_dim)))[0]\n"
                      "    x = model.embedding.forward(tokens) + table[positions]  # (B, t, D), each token at its "
                      "own position\n",
                      "    x = model.embedding.W[tokens] + model.positional_encoding.pe[positions]\n"),
                     ("kv_cache.py",
                      "    return h @ model.embedding.W.T if model.output is None else model.output.forward(h)",
                      '    return np.einsum("btd,vd->btv", h, model.embedding.W) if model.output is None '
                      "else model.output.forward(h)"))),
    Equivalent("kv-prefill-one-position-at-a-time", "14", "kv_cache.py",
               "CachedDecoder's prefill runs the padded prompts through decode_step one column at a time, keeping "
               "each row's logits when its last real token goes in",
               "        logits = model.decode_step(tokens, self.cache)  # the prompts at once, right-padded: "
               "(B, T, V)\n"
               "        self.cache.lengths[:] = lengths  # a short row's padding is never read, and its next "
               "token overwrites it\n"
               "        self.logits = logits[np.arange(len(prompts)), lengths - 1]\n",
               "        self.logits = np.zeros((len(prompts), model.vocab_size))\n"
               "        for column in range(tokens.shape[1]):\n"
               "            logits = model.decode_step(tokens[:, column:column + 1], self.cache)[:, 0]\n"
               "            ends = lengths - 1 == column\n"
               "            self.logits[ends] = logits[ends]\n"
               "        self.cache.lengths = lengths.astype(np.int64)\n"),
]

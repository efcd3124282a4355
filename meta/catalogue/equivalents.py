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
    # ---------------------------------------------------------------- 11: causal attention, Pre-LN
    Equivalent("causal-compare-and-named-steps", "11", "causal.py",
               "the causal mask from comparing position indices, the attention's gradients with reshaped 2-D "
               "products instead of einsum, and the Pre-LN backward one named step at a time",
               "    return np.tril(np.ones((T, T), dtype=bool))",
               "    rows, columns = np.indices((T, T))\n    return columns <= rows",
               more=(("causal.py", '            grad_W += np.einsum("btd,bte->de", x, d_proj)',
                      "            grad_W += x.reshape(-1, D).T @ d_proj.reshape(-1, D)"),
                     ("causal.py", '        self.grad_W_o += np.einsum("btd,bte->de", joined, grad_output)',
                      "        self.grad_W_o += joined.reshape(B * T, D).T @ grad_output.reshape(B * T, D)"),
                     ("causal.py",
                      "        d_h = grad_output + self.norm2.backward(self.feed_forward.backward(grad_output))\n"
                      "        return d_h + self.norm1.backward(self.attention.backward(d_h))",
                      "        d_ff_in = self.feed_forward.backward(grad_output)\n"
                      "        d_h = self.norm2.backward(d_ff_in)\n"
                      "        d_h += grad_output  # the skip path\n"
                      "        d_attention_in = self.attention.backward(d_h)\n"
                      "        return self.norm1.backward(d_attention_in) + d_h"))),
    # ---------------------------------------------------------------- 12: the decoder
    Equivalent("decoder-own-log-softmax-and-loops", "12", "decoder.py",
               "the sequence loss as its own log-softmax weighted by the mask (not through CrossEntropyLoss), the "
               "batch built row by row, the tied projection through np.einsum",
               "        inner = CrossEntropyLoss()  # lesson 06 on the counted positions, as one flat batch\n"
               "        loss = inner.forward(logits[loss_mask], targets[loss_mask])\n"
               "        self.cache = (inner, loss_mask, logits.shape)\n"
               "        return float(loss)",
               "        shifted = logits - logits.max(axis=-1, keepdims=True)\n"
               "        log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))  # (B, T, V)\n"
               "        picked = np.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]  # (B, T)\n"
               "        weights = loss_mask / loss_mask.sum()\n"
               "        self.cache = (np.exp(log_probs), targets, weights)\n"
               "        return float(-(picked * weights).sum())",
               more=(("decoder.py",
                      "        inner, loss_mask, shape = self.cache\n"
                      "        grad = np.zeros(shape)\n"
                      "        grad[loss_mask] = inner.backward()\n"
                      "        return grad",
                      "        probs, targets, weights = self.cache\n"
                      "        grad = probs - np.eye(probs.shape[-1])[targets]\n"
                      "        return grad * weights[..., None]"),
                     ("decoder.py",
                      "            return h @ self.embedding.W.T  # (B, T, V): the same matrix reads tokens in and "
                      "writes them out",
                      '            return np.einsum("btd,vd->btv", h, self.embedding.W)'),
                     ("decoder.py",
                      "    mask = positions < (lengths[:, None] - 1)\n",
                      "    mask = np.zeros((B, T), dtype=bool)\n"
                      "    for row, length in enumerate(lengths):\n"
                      "        mask[row, : length - 1] = True\n"))),
    # ---------------------------------------------------------------- 13: generation
    Equivalent("generation-argpartition-and-choice", "13", "generation.py",
               "top-k through np.argpartition, and each row sampled with rng.choice over its probabilities (another "
               "use of the generator: other draws, the same distribution)",
               "        kth = np.sort(logits, axis=1)[:, -top_k][:, None]  # the k-th largest value of each row",
               "        part = np.partition(logits, logits.shape[1] - top_k, axis=1)\n"
               "        kth = part[:, logits.shape[1] - top_k][:, None]",
               more=(("generation.py",
                      "    draws = rng.random((len(logits), 1))  # inverse transform: the first token whose cumulative "
                      "mass passes u\n"
                      "    chosen = (np.cumsum(probs, axis=1) <= draws).sum(axis=1)\n"
                      "    last_kept = logits.shape[1] - 1 - (probs[:, ::-1] > 0).argmax(axis=1)  # u above a rounded-"
                      "down total\n"
                      "    return np.minimum(chosen, last_kept).astype(np.int64)",
                      "    return np.array([rng.choice(len(row), p=row) for row in probs], dtype=np.int64)"),)),
    # ---------------------------------------------------------------- 14: the KV cache
    Equivalent("kv-cache-row-loops", "14", "kv_cache.py",
               "the new keys and values written into the cache row by row, and each row's positional encoding "
               "read from a table of the whole capacity",
               "    keys.transpose(0, 2, 1, 3)[rows, positions] = heads(attention.W_k)  # writes through the view\n"
               "    values.transpose(0, 2, 1, 3)[rows, positions] = heads(attention.W_v)",
               "    new_keys, new_values = heads(attention.W_k), heads(attention.W_v)  # (B, t, H, Dh)\n"
               "    for b in range(B):\n"
               "        start = lengths[b]\n"
               "        keys[b, :, start:start + t] = new_keys[b].transpose(1, 0, 2)\n"
               "        values[b, :, start:start + t] = new_values[b].transpose(1, 0, 2)",
               more=(("kv_cache.py",
                      "    table = model.positional_encoding.forward(np.zeros((1, int(positions.max()) + 1, "
                      "model.embed_dim)))[0]",
                      "    table = model.positional_encoding.forward(np.zeros((1, cache.capacity, model.embed_dim)))[0]"),)),
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

"""The decoder of lessons 11-14 in PyTorch, started from a NumPy DecoderLM's weights, with and without a KV cache."""

import math

import numpy as np
import torch


class Block(torch.nn.Module):
    """Pre-LN: h = x + attention(norm1(x)); out = h + feed_forward(norm2(h)); causal attention, no biases."""

    def __init__(self, D, H, F):
        super().__init__()
        self.H, self.Dh = H, D // H
        self.norm1, self.norm2 = torch.nn.LayerNorm(D), torch.nn.LayerNorm(D)
        self.q, self.k, self.v, self.o = (torch.nn.Linear(D, D, bias=False) for _ in range(4))
        self.feed_forward = torch.nn.Sequential(torch.nn.Linear(D, F), torch.nn.ReLU(), torch.nn.Linear(F, D))

    def heads(self, x):  # (B, T, D) -> (B, H, T, Dh)
        return x.view(x.shape[0], x.shape[1], self.H, self.Dh).transpose(1, 2)

    def attend(self, q, k, v, allowed):
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.Dh)
        weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)
        out = (weights @ v).transpose(1, 2)
        return self.o(out.reshape(out.shape[0], out.shape[1], -1))

    def forward(self, x, allowed):
        """x (B, T, D); allowed (B, 1, T, T): key real and not after the query."""
        n = self.norm1(x)
        h = x + self.attend(self.heads(self.q(n)), self.heads(self.k(n)), self.heads(self.v(n)), allowed)
        return h + self.feed_forward(self.norm2(h))

    def step(self, x, keys, values, rows, positions):
        """x (B, t, D) at positions (B, t); keys, values (B, H, capacity, Dh) written at those positions."""
        n = self.norm1(x)
        keys.transpose(1, 2)[rows, positions] = self.k(n).view(*x.shape[:2], self.H, self.Dh)
        values.transpose(1, 2)[rows, positions] = self.v(n).view(*x.shape[:2], self.H, self.Dh)
        allowed = torch.arange(keys.shape[2])[None, None, :] <= positions[:, :, None]  # (B, t, capacity)
        h = x + self.attend(self.heads(self.q(n)), keys, values, allowed[:, None])
        return h + self.feed_forward(self.norm2(h))


class DecoderMirror(torch.nn.Module):
    """Embedding, sinusoidal positions, Pre-LN causal blocks, a final LayerNorm, the output (or the tied embedding)."""

    def __init__(self, model, dtype=torch.float64):
        super().__init__()
        D, first = model.embed_dim, model.blocks[0]
        self.embedding = torch.nn.Embedding(model.vocab_size, D)
        self.blocks = torch.nn.ModuleList(
            Block(D, b.attention.num_heads, b.feed_forward.linear1.W.shape[1]) for b in model.blocks)
        self.norm = torch.nn.LayerNorm(D)
        self.output = None if model.output is None else torch.nn.Linear(D, model.vocab_size)
        self.register_buffer("pe", torch.tensor(model.positional_encoding.pe))
        self.H, self.Dh = first.attention.num_heads, first.attention.head_dim
        self.to(dtype)  # before the copies: float32 parameters would round the float64 weights copied into them
        t = lambda a: torch.tensor(np.asarray(a))
        with torch.no_grad():  # torch keeps weights as (out, in): ours are (in, out), hence the transposes
            self.embedding.weight.copy_(t(model.embedding.W))
            for mine, theirs in zip(self.blocks, model.blocks):
                a = theirs.attention
                for layer, W in ((mine.q, a.W_q), (mine.k, a.W_k), (mine.v, a.W_v), (mine.o, a.W_o)):
                    layer.weight.copy_(t(W.T))
                for norm, src in ((mine.norm1, theirs.norm1), (mine.norm2, theirs.norm2)):
                    norm.weight.copy_(t(src.gamma))
                    norm.bias.copy_(t(src.beta))
                for layer, src in ((mine.feed_forward[0], theirs.feed_forward.linear1),
                                   (mine.feed_forward[2], theirs.feed_forward.linear2)):
                    layer.weight.copy_(t(src.W.T))
                    layer.bias.copy_(t(src.b))
            self.norm.weight.copy_(t(model.norm.gamma))
            self.norm.bias.copy_(t(model.norm.beta))
            if self.output is not None:
                self.output.weight.copy_(t(model.output.W.T))
                self.output.bias.copy_(t(model.output.b))

    def logits(self, h):
        return h @ self.embedding.weight.T if self.output is None else self.output(h)

    def forward(self, tokens, mask):
        """tokens (B, T), mask (B, T) bool (real tokens) -> logits (B, T, V), as DecoderLM.forward."""
        T = tokens.shape[1]
        x = self.embedding(tokens) + self.pe[:T]
        allowed = torch.tril(torch.ones(T, T, dtype=torch.bool))[None, None] & mask[:, None, None, :]
        for block in self.blocks:
            x = block(x, allowed)
        return self.logits(self.norm(x))

    def new_cache(self, B):
        shape = (B, self.H, self.pe.shape[0], self.Dh)
        dtype = self.embedding.weight.dtype
        return ([torch.zeros(shape, dtype=dtype) for _ in self.blocks],
                [torch.zeros(shape, dtype=dtype) for _ in self.blocks], torch.zeros(B, dtype=torch.long))

    def decode_step(self, tokens, cache):
        """tokens (B, t) after what cache holds -> logits (B, t, V); the cache's lengths grow by t."""
        keys, values, lengths = cache
        positions = lengths[:, None] + torch.arange(tokens.shape[1])[None, :]
        rows = torch.arange(tokens.shape[0])[:, None]
        x = self.embedding(tokens) + self.pe[positions]
        for block, k, v in zip(self.blocks, keys, values):
            x = block.step(x, k, v, rows, positions)
        lengths += tokens.shape[1]
        return self.logits(self.norm(x))


def padded(prompts, pad):
    lengths = torch.tensor([len(p) for p in prompts])
    tokens = torch.full((len(prompts), int(lengths.max())), pad, dtype=torch.long)
    for row, prompt in enumerate(prompts):
        tokens[row, : len(prompt)] = torch.tensor(prompt)
    return tokens, lengths


@torch.no_grad()
def greedy(mirror, prompts, new_tokens, pad, use_cache):
    """new_tokens greedy tokens after each prompt (no stop at EOS): (B, new_tokens) int64 numpy."""
    tokens, lengths = padded(prompts, pad)
    rows = torch.arange(len(prompts))
    written = []
    if use_cache:
        cache = mirror.new_cache(len(prompts))
        logits = mirror.decode_step(tokens, cache)[rows, lengths - 1]
        cache[2][:] = lengths  # a short row's padding is never read; its next token overwrites it
    for step in range(new_tokens):
        if not use_cache:
            mask = torch.arange(tokens.shape[1])[None, :] < lengths[:, None]
            logits = mirror(tokens, mask)[rows, lengths - 1]
        chosen = logits.argmax(dim=1)
        written.append(chosen)
        if step == new_tokens - 1:
            break
        if use_cache:
            logits = mirror.decode_step(chosen[:, None], cache)[:, 0]
        else:
            if int(lengths.max()) == tokens.shape[1]:
                tokens = torch.nn.functional.pad(tokens, (0, 1), value=pad)
            tokens[rows, lengths] = chosen
            lengths = lengths + 1
    return torch.stack(written, dim=1).numpy()

"""The same model in PyTorch, started from a NumPy Transformer's weights, for side-by-side figures."""

import numpy as np
import torch


class Block(torch.nn.Module):
    def __init__(self, D, H, F):
        super().__init__()
        self.attention = torch.nn.MultiheadAttention(D, H, bias=False, batch_first=True)
        self.norm1, self.norm2 = torch.nn.LayerNorm(D), torch.nn.LayerNorm(D)
        self.feed_forward = torch.nn.Sequential(torch.nn.Linear(D, F), torch.nn.ReLU(), torch.nn.Linear(F, D))

    def forward(self, x, ignore):
        h = self.norm1(x + self.attention(x, x, x, key_padding_mask=ignore, need_weights=False)[0])
        return self.norm2(h + self.feed_forward(h))


class Mirror(torch.nn.Module):
    """Post-LN encoder with sinusoidal positions and first-token pooling, as the contract describes."""

    def __init__(self, model, dtype):
        super().__init__()
        D = model.embed_dim
        blocks = model.blocks
        self.embedding = torch.nn.Embedding(model.vocab_size, D)
        self.blocks = torch.nn.ModuleList(
            Block(D, b.attention.num_heads, b.feed_forward.linear1.W.shape[1]) for b in blocks)
        self.output = torch.nn.Linear(D, model.vocab_size)
        self.register_buffer("pe", torch.tensor(model.positional_encoding.pe))
        t = lambda a: torch.tensor(np.asarray(a))
        with torch.no_grad():  # torch keeps weights as (out, in): ours are (in, out), hence the transposes
            self.embedding.weight.copy_(t(model.embedding.W))
            for mine, theirs in zip(self.blocks, blocks):
                a = theirs.attention
                mine.attention.in_proj_weight.copy_(t(np.concatenate([a.W_q.T, a.W_k.T, a.W_v.T])))
                mine.attention.out_proj.weight.copy_(t(a.W_o.T))
                for norm, src in ((mine.norm1, theirs.norm1), (mine.norm2, theirs.norm2)):
                    norm.weight.copy_(t(src.gamma))
                    norm.bias.copy_(t(src.beta))
                for layer, src in ((mine.feed_forward[0], theirs.feed_forward.linear1),
                                   (mine.feed_forward[2], theirs.feed_forward.linear2)):
                    layer.weight.copy_(t(src.W.T))
                    layer.bias.copy_(t(src.b))
            self.output.weight.copy_(t(model.output.W.T))
            self.output.bias.copy_(t(model.output.b))
        self.to(dtype)

    def forward(self, tokens, mask):
        x = self.embedding(tokens) + self.pe[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x, ~mask)
        return self.output(x[:, 0])

"""Wrong implementations of lesson 05 (Transformer.forward)."""

from meta.catalogue import Mutant

POOL = "return self.output.forward(x[:, 0, :])"

MUTANTS = [
    Mutant("model-mean-pooling", "05", "model.py",
           "mean pooling over every position instead of the first token's state",
           POOL, "return self.output.forward(x.mean(axis=1))"),
    Mutant("model-masked-mean-pooling", "05", "model.py",
           "mean pooling over the real (unmasked) tokens instead of the first token's state",
           POOL, "return self.output.forward((x * mask[:, :, None]).sum(axis=1) / mask.sum(axis=1, keepdims=True))"),
    Mutant("model-last-token-pooling", "05", "model.py",
           "the last position pooled instead of the first (a PAD position in a padded row)",
           POOL, "return self.output.forward(x[:, -1, :])"),
    Mutant("model-returns-probabilities", "05", "model.py",
           "softmax probabilities returned instead of logits",
           POOL,
           "logits = self.output.forward(x[:, 0, :])\n"
           "        e = np.exp(logits - logits.max(axis=1, keepdims=True))\n"
           "        return e / e.sum(axis=1, keepdims=True)"),
    Mutant("model-no-positional-encoding", "05", "model.py",
           "the positional encoding skipped: the blocks see a bag of tokens",
           "x = self.positional_encoding.forward(self.embedding.forward(tokens))",
           "x = self.embedding.forward(tokens)"),
    Mutant("model-mask-ignored", "05", "model.py",
           "the mask not passed to the blocks, so PAD tokens are attended to",
           "x = block.forward(x, mask)", "x = block.forward(x)"),
    Mutant("model-blocks-not-chained", "05", "model.py",
           "every block reads the embeddings instead of the previous block's output",
           "            x = block.forward(x, mask)\n"
           "        return self.output.forward(x[:, 0, :])",
           "            h = block.forward(x, mask)\n"
           "        return self.output.forward(h[:, 0, :])"),
    Mutant("model-embedding-scaled", "05", "model.py",
           "the embeddings multiplied by sqrt(D) before the positions are added (not this contract's model)",
           "x = self.positional_encoding.forward(self.embedding.forward(tokens))",
           "x = self.positional_encoding.forward(self.embedding.forward(tokens) * np.sqrt(self.embed_dim))"),
    Mutant("model-only-first-block", "05", "model.py",
           "only the first block applied (the loop returns too early)",
           "        return self.output.forward(x[:, 0, :])",
           "            break\n"
           "        return self.output.forward(x[:, 0, :])"),
    Mutant("model-forward-clears-tokens", "05", "model.py",
           "Transformer.forward overwrites the caller's tokens with PAD once it has computed the logits",
           "        return self.output.forward(x[:, 0, :])  # (B, V), the first token's state is the summary\n",
           "        logits = self.output.forward(x[:, 0, :])\n        tokens[...] = 0\n        return logits\n",
           says="in place"),
    Mutant("model-forward-fills-mask", "05", "model.py",
           "Transformer.forward sets every entry of the mask it was given to True once it has computed the logits",
           "        return self.output.forward(x[:, 0, :])  # (B, V), the first token's state is the summary\n",
           "        logits = self.output.forward(x[:, 0, :])\n        mask[...] = True\n        return logits\n",
           says="in place"),
]

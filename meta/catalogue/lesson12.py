"""Wrong implementations of lesson 12 (a decoder-only language model: create_lm_batch, DecoderLM, the loss over the
answer, exact-sequence accuracy)."""

from meta.catalogue import Mutant

F = "decoder.py"
LOSS_MASK = "loss_mask = (positions + 1 >= starts[:, None]) & (positions + 1 < lengths[:, None])"
RETURN_BATCH = ("return np.where(mask, sequences[:, :-1], PAD_TOKEN), sequences[:, 1:], loss_mask, mask  "
                "# last tokens: no input")
TIED_OUT = "return h @ self.embedding.W.T  # (B, T, V): the same matrix reads tokens in and writes them out"
TIED_GRAD = 'self.embedding.grad_W += np.einsum("btv,btd->vd", grad_logits, h)  # the output\'s share of W'
RIGHT = "right = (model.forward(inputs, mask).argmax(axis=-1) == targets) | ~loss_mask"

MUTANTS = [
    # ---------------------------------------------------------------- teacher forcing
    Mutant("lm-batch-targets-not-shifted", "12", F,
           "the targets are the inputs themselves: every position is asked for its own token, not the next one",
           RETURN_BATCH, "return np.where(mask, sequences[:, :-1], PAD_TOKEN), np.where(mask, sequences[:, :-1], "
           "PAD_TOKEN), loss_mask, mask"),
    Mutant("lm-batch-counts-the-prompt", "12", F,
           "the loss mask counts every real target, the prompt's included",
           LOSS_MASK, "loss_mask = positions + 1 < lengths[:, None]"),
    Mutant("lm-batch-misses-eos", "12", F,
           "the loss mask stops one short: the EOS the model must learn to write is not counted",
           LOSS_MASK, "loss_mask = (positions + 1 >= starts[:, None]) & (positions + 1 < lengths[:, None] - 1)"),
    Mutant("lm-batch-counts-the-close-bracket", "12", F,
           "the loss mask starts one early, counting the prompt's ')' as part of the answer",
           LOSS_MASK, "loss_mask = (positions + 2 >= starts[:, None]) & (positions + 1 < lengths[:, None])"),
    Mutant("lm-batch-mask-one-too-long", "12", F,
           "the attention mask marks the last input position of each row real even where it is padding",
           "mask = positions < (lengths[:, None] - 1)", "mask = positions < lengths[:, None]"),
    Mutant("lm-batch-keeps-the-last-token-as-input", "12", F,
           "the inputs are the padded sequences cut at the longest row: a short row keeps its EOS as an input",
           RETURN_BATCH, "return sequences[:, :-1], sequences[:, 1:], loss_mask, mask"),
    # ---------------------------------------------------------------- the decoder
    Mutant("lm-no-final-norm", "12", F,
           "the final LayerNorm left out: the output reads the last block's output directly",
           "h = self.norm.forward(x)  # (B, T, D)", "h = x"),
    Mutant("lm-mask-ignored", "12", F,
           "the padding mask never reaches the blocks (each sees every token as a key)",
           "x = block.forward(x, mask)", "x = block.forward(x)"),
    Mutant("lm-positions-left-out", "12", F,
           "no positional encoding: the decoder cannot tell where a token is",
           "x = self.positional_encoding.forward(self.embedding.forward(tokens))  # (B, T, D)",
           "x = self.embedding.forward(tokens)  # (B, T, D)"),
    Mutant("lm-tied-output-untransposed", "12", F,
           "the tied projection through a product of the embedding with itself instead of h @ W.T alone",
           TIED_OUT, "return h @ self.embedding.W[: h.shape[-1]].T @ self.embedding.W[: h.shape[-1]] @ "
           "self.embedding.W.T"),
    # ---------------------------------------------------------------- backward
    Mutant("lm-tied-gradient-misses-the-output-share", "12", F,
           "weight tying: only the lookup's gradient reaches embedding.W, the output projection's share is lost",
           TIED_GRAD, "pass", section="Weight tying"),
    Mutant("lm-tied-gradient-misses-the-input-share", "12", F,
           "weight tying: the output's share is added but the lookup's is not (embedding.backward skipped)",
           "self.embedding.backward(self.positional_encoding.backward(dx))  # the input's share of W",
           "self.embedding.backward(self.positional_encoding.backward(dx)) if not self.tie_weights else None",
           section="Weight tying"),
    Mutant("lm-tied-gradient-transposed-product", "12", F,
           "the tied output's gradient as h^T g summed wrongly: positions mixed across the batch",
           TIED_GRAD, 'self.embedding.grad_W += np.einsum("btv,bsd->vd", grad_logits, h) / h.shape[1]',
           section="Weight tying"),
    Mutant("lm-backward-skips-final-norm", "12", F,
           "backward passes the output's gradient straight to the blocks, skipping the final norm's backward",
           "dx = self.norm.backward(dh)", "dx = dh"),
    Mutant("lm-backward-blocks-in-forward-order", "12", F,
           "backward through the blocks in the forward order",
           "for block in reversed(self.blocks):\n            dx = block.backward(dx)",
           "for block in self.blocks:\n            dx = block.backward(dx)"),
    # ---------------------------------------------------------------- the loss over the answer
    Mutant("lm-loss-mean-over-all-positions", "12", F,
           "the loss summed over the counted positions but divided by every position of the batch (B * T)",
           "        return float(loss)\n", "        return float(loss * loss_mask.sum() / loss_mask.size)\n"),
    Mutant("lm-loss-counts-everything", "12", F,
           "the loss over every position, the prompt and the padding included",
           "loss = inner.forward(logits[loss_mask], targets[loss_mask])",
           "loss = inner.forward(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))"),
    Mutant("lm-loss-grad-everywhere", "12", F,
           "backward spreads the counted positions' gradient over every position",
           "grad[loss_mask] = inner.backward()", "grad[:] = inner.backward().mean(axis=0)"),
    # ---------------------------------------------------------------- exact-sequence accuracy
    Mutant("lm-exact-match-per-token", "12", F,
           "exact_match_accuracy counts right tokens, not wholly right sequences",
           "correct += int(right.all(axis=1).sum())\n    return correct / len(examples)",
           "correct += int((right & loss_mask).sum()) / max(int(loss_mask.sum()), 1) * len(right)\n"
           "    return correct / len(examples)"),
    Mutant("lm-exact-match-counts-the-prompt", "12", F,
           "exact_match_accuracy also asks the prompt's next tokens to be predicted",
           RIGHT, "right = (model.forward(inputs, mask).argmax(axis=-1) == targets) | ~mask"),
    Mutant("lm-exact-match-any-position", "12", F,
           "exact_match_accuracy counts a sequence right when any answer position is right",
           "correct += int(right.all(axis=1).sum())",
           "correct += int(((model.forward(inputs, mask).argmax(axis=-1) == targets) & loss_mask).any(axis=1).sum())"),
]

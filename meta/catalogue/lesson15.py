"""Wrong implementations that lesson 15 (integration of the decoder) must reject: parts that pass alone but do not
make a decoder that learns and writes, and submissions reporting numbers they never earned."""

from meta.catalogue import Mutant

SEE = "Training your own decoder"  # every failure of lesson 15 points to its one section

TRAIN_STEP = """    model.zero_grad()
    loss = loss_fn.forward(model.forward(inputs, mask), targets, loss_mask)
    model.backward(loss_fn.backward())
    optimizer.step()
    return float(loss)
"""
# made-up numbers: a loss falling from ln 20 with every call, the model never trained
FAKE_STEP = """    calls = getattr(lm_train_step, "calls", 0)
    lm_train_step.calls = calls + 1
    return 3.0 * 0.98 ** calls
"""
GENERATE = """    rng = np.random.default_rng(seed)
    decoder = (CachedDecoder if use_cache else RecomputeDecoder)(model, prompts)
"""
# answers that do not come from the model: the prompt's digit tokens in order (the digits' ids are in order), EOS
FAKE_GENERATE = """    return [sorted(p[1:-1]) + [EOS_TOKEN] for p in prompts]
"""
EXACT = """    correct = 0
    for first in range(0, len(examples), batch_size):
"""
FAKE_EXACT = """    return 1.0
    for first in range(0, len(examples), batch_size):
"""

MUTANTS = [
    Mutant("gpt-integration-reports-made-up-losses", "15", "decoder.py",
           "an lm_train_step that never trains the (correct) decoder and returns made-up falling losses",
           TRAIN_STEP, FAKE_STEP, says="computed by the test", section=SEE),
    Mutant("gpt-integration-fakes-training-and-writing", "15", "decoder.py",
           "made-up falling losses, a generate that sorts the prompt's tokens itself without the model, and an "
           "exact_match_accuracy that returns 1.0",
           TRAIN_STEP, FAKE_STEP, more=(("generation.py", GENERATE, FAKE_GENERATE), ("decoder.py", EXACT, FAKE_EXACT)),
           says="computed by the test", section=SEE),
    Mutant("gpt-integration-backward-skips-the-blocks", "15", "decoder.py",
           "DecoderLM.backward sends the gradient straight from the final norm to the embedding, past the blocks, "
           "which then never learn",
           "        for block in reversed(self.blocks):\n            dx = block.backward(dx)\n", "", section=SEE),
    Mutant("gpt-integration-loss-gradient-sign-flipped", "15", "decoder.py",
           "SequenceCrossEntropyLoss.backward returns minus the gradient: Adam climbs the loss",
           "        grad[loss_mask] = inner.backward()\n", "        grad[loss_mask] = -inner.backward()\n",
           section=SEE),
    Mutant("gpt-integration-adam-steps-uphill", "15", "optim.py",
           "Adam adds its step to the parameters instead of subtracting it",
           "            param -= self.learning_rate * (m / correction1)",
           "            param += self.learning_rate * (m / correction1)", section=SEE),
    Mutant("gpt-integration-attention-not-causal", "15", "causal.py",
           "CausalSelfAttention without the causal mask: training looks fine (each position copies the next "
           "token), but the model cannot write, as the next token is not there yet",
           "        allowed = causal_mask(T)[None, None]  # (1, 1, T, T)\n",
           "        allowed = np.ones((1, 1, T, T), dtype=bool)\n", section=SEE),
    Mutant("gpt-integration-generate-never-stops", "15", "generation.py",
           "generate goes on writing after EOS, to max_new_tokens",
           "        finished |= chosen == EOS_TOKEN\n", "", section=SEE),
    Mutant("gpt-integration-reads-the-last-column", "15", "generation.py",
           "RecomputeDecoder.next_logits reads the last column of the padded batch, not each row's last token: "
           "shorter prompts get the logits of a padding position",
           "        return logits[np.arange(len(self.lengths)), self.lengths - 1]\n",
           "        return logits[:, -1]\n", section=SEE),
    Mutant("gpt-integration-cache-positions-restart", "15", "kv_cache.py",
           "decode_step puts each new token at position 0 instead of after what the cache holds",
           "    positions = cache.lengths[:, None] + np.arange(t)[None, :]  # (B, t)\n",
           "    positions = np.broadcast_to(np.arange(t)[None, :], (B, t))\n", section=SEE),
    Mutant("gpt-integration-cache-keeps-the-padding", "15", "kv_cache.py",
           "CachedDecoder.__init__ leaves each row's cache length at the padded prompt length: a short prompt's "
           "next tokens come after its padding, which it then attends to",
           "        self.cache.lengths[:] = lengths  # a short row's padding is never read, and its next token "
           "overwrites it\n", "", section=SEE),
]

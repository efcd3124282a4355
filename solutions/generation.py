"""Lesson 13: writing with the model: greedy decoding, temperature, top-k and top-p sampling."""

import numpy as np

from .attention import softmax
from .data import EOS_TOKEN, PAD_TOKEN
from .kv_cache import CachedDecoder
from .validation import check_array, check_positive_int


def filter_logits(logits, top_k=None, top_p=None):
    """Keep, in each row, the tokens sampling may choose; the others become -inf.

    logits: (B, V)
    top_k: keep the k largest logits of each row (None: no limit); ties at the k-th value are all kept
    top_p: keep the smallest set of most probable tokens whose softmax probability sums to at least top_p
           (None: no limit); the most probable token is always kept
    returns: a new (B, V) array; with both, a token is kept only if both keep it
    """
    check_array(logits, "logits", ndim=2)
    if top_k is not None:
        top_k = check_positive_int(top_k, "top_k")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    # BEGIN SOLUTION
    keep = np.ones(logits.shape, dtype=bool)
    if top_k is not None and top_k < logits.shape[1]:
        kth = np.sort(logits, axis=1)[:, -top_k][:, None]  # the k-th largest value of each row
        keep &= logits >= kth
    if top_p is not None:
        order = np.argsort(-logits, axis=1, kind="stable")  # most probable first
        probs = softmax(logits, axis=1)
        sorted_probs = np.take_along_axis(probs, order, axis=1)
        before = np.cumsum(sorted_probs, axis=1) - sorted_probs  # the mass of the tokens ranked above
        in_nucleus = np.zeros(logits.shape, dtype=bool)
        np.put_along_axis(in_nucleus, order, before < top_p, axis=1)  # kept while the mass so far is short
        keep &= in_nucleus
    return np.where(keep, logits, -np.inf)
    # END SOLUTION


def sample_next(logits, rng, temperature=1.0, top_k=None, top_p=None):
    """One token id per row.

    logits: (B, V); rng: a numpy Generator, the only source of randomness (or a seed, for a new Generator)
    temperature: 0 means greedy (the argmax, no randomness); otherwise sample from
                 softmax(logits / temperature) over the tokens filter_logits keeps (top-p measured on
                 the tempered probabilities)
    returns: (B,) int64
    """
    check_array(logits, "logits", ndim=2)
    if temperature < 0:
        raise ValueError(f"temperature must be at least 0, got {temperature}")
    rng = np.random.default_rng(rng)  # a Generator comes back as it is; a seed gives a new one
    # BEGIN SOLUTION
    if temperature == 0:
        return logits.argmax(axis=1).astype(np.int64)
    scaled = filter_logits(logits / temperature, top_k, top_p)
    probs = softmax(scaled, axis=1)  # a filtered token's -inf gives it probability 0
    draws = rng.random((len(logits), 1))  # inverse transform: the first token whose cumulative mass passes u
    chosen = (np.cumsum(probs, axis=1) <= draws).sum(axis=1)
    last_kept = logits.shape[1] - 1 - (probs[:, ::-1] > 0).argmax(axis=1)  # u above a rounded-down total
    return np.minimum(chosen, last_kept).astype(np.int64)
    # END SOLUTION


class RecomputeDecoder:
    """Next-token logits for a batch of prompts by running the whole prefix through the model at each step.

    next_logits() -> (B, V): the logits at each row's last token; append(tokens (B,)) adds one token per row.
    """

    def __init__(self, model, prompts):
        self.model = model
        self.lengths = np.array([len(p) for p in prompts])
        self.tokens = np.full((len(prompts), self.lengths.max()), PAD_TOKEN, dtype=np.int64)
        for row, prompt in enumerate(prompts):
            self.tokens[row, : len(prompt)] = prompt

    def next_logits(self):
        # BEGIN SOLUTION
        T = int(self.lengths.max())
        mask = np.arange(T)[None, :] < self.lengths[:, None]  # each row's own prefix, right-padded
        logits = self.model.forward(self.tokens[:, :T], mask)  # (B, T, V)
        return logits[np.arange(len(self.lengths)), self.lengths - 1]
        # END SOLUTION

    def append(self, tokens):
        # BEGIN SOLUTION
        if self.lengths.max() == self.tokens.shape[1]:
            self.tokens = np.pad(self.tokens, ((0, 0), (0, 1)), constant_values=PAD_TOKEN)
        self.tokens[np.arange(len(self.lengths)), self.lengths] = tokens
        self.lengths = self.lengths + 1
        # END SOLUTION


def generate(model, prompts, max_new_tokens, temperature=0.0, top_k=None, top_p=None, seed=None,
             use_cache=False):
    """Continue each prompt until it writes EOS or has written max_new_tokens tokens.

    prompts: non-empty list of non-empty token lists; they may differ in length
    temperature, top_k, top_p: as in sample_next (temperature 0: greedy); seed: the same seed, the same text
    use_cache: take the logits from a CachedDecoder (lesson 14) instead of a RecomputeDecoder
    returns: list of the new tokens of each prompt (its EOS included when it wrote one)
    """
    if len(prompts) == 0 or any(len(p) == 0 for p in prompts):
        raise ValueError("generate needs at least one prompt, and no empty prompt")
    max_new_tokens = check_positive_int(max_new_tokens, "max_new_tokens", minimum=0)
    limit = model.positional_encoding.max_seq_len
    if max(len(p) for p in prompts) + max_new_tokens > limit:
        raise ValueError(f"the longest prompt plus max_new_tokens={max_new_tokens} exceeds max_seq_len={limit}")
    rng = np.random.default_rng(seed)
    decoder = (CachedDecoder if use_cache else RecomputeDecoder)(model, prompts)
    # BEGIN SOLUTION
    written = [[] for _ in prompts]
    finished = np.zeros(len(prompts), dtype=bool)
    for step in range(max_new_tokens):
        chosen = sample_next(decoder.next_logits(), rng, temperature, top_k, top_p)
        for row in np.flatnonzero(~finished):
            written[row].append(int(chosen[row]))
        finished |= chosen == EOS_TOKEN
        if finished.all() or step == max_new_tokens - 1:
            break
        decoder.append(np.where(finished, PAD_TOKEN, chosen))  # a finished row's filler is never read
    return written
    # END SOLUTION

# Generated from solutions/ by `python -m kata.authoring.stubs`: your work goes where NotImplementedError is raised.
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
    # EXERCISE lesson13 "Top-k and top-p": write filter_logits here
    raise NotImplementedError('filter_logits (lesson 13) is not implemented yet: reread lessons/13_generation.md, section "Top-k and top-p"')


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
    # EXERCISE lesson13 "Temperature and sampling": write sample_next here
    raise NotImplementedError('sample_next (lesson 13) is not implemented yet: reread lessons/13_generation.md, section "Temperature and sampling"')


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
        # EXERCISE lesson13 "Decoding a batch": write RecomputeDecoder.next_logits here
        raise NotImplementedError('RecomputeDecoder.next_logits (lesson 13) is not implemented yet: reread lessons/13_generation.md, section "Decoding a batch"')

    def append(self, tokens):
        # EXERCISE lesson13 "Decoding a batch": write RecomputeDecoder.append here
        raise NotImplementedError('RecomputeDecoder.append (lesson 13) is not implemented yet: reread lessons/13_generation.md, section "Decoding a batch"')


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
    # EXERCISE lesson13 "The generation loop": write generate here
    raise NotImplementedError('generate (lesson 13) is not implemented yet: reread lessons/13_generation.md, section "The generation loop"')

"""play.py's decoder side: digits to sort, such as ( 5 3 9 ), answered one token at a time by a DecoderLM, each
token with its probability and where the last layer attended from the position that wrote it."""

import re

import numpy as np

from . import analysis
from .terminal import bar, heatmap

EXTRA_TOKENS = 3  # the decoder may write this many tokens more than a sorted answer has, before it is stopped


class ParseError(ValueError):
    """The line is not a question the model can answer; the message says why and what would be."""


def parse_prompt(line, max_digits):
    """'( 5 3 9 )', '5 3 9' or '(5,3,9)' -> [5, 3, 9]. Raises ParseError with a message a player can act on."""
    text = line.strip()
    if not text:
        raise ParseError("an empty line: type digits to sort such as ( 5 3 9 ) or 5 3 9, or press Ctrl-D to quit")
    if text.startswith("(") or text.endswith(")"):
        if not (text.startswith("(") and text.endswith(")")) or text.count("(") != 1 or text.count(")") != 1:
            raise ParseError(f"unbalanced parentheses in {text!r}: write ( 5 3 9 ) or 5 3 9")
        text = text[1:-1]
    digits = []
    for item in (item for item in re.split(r"[\s,]+", text) if item):
        if re.fullmatch(r"\d{2,}", item):
            raise ParseError(f"{item} is more than one digit: each token is one digit, so write "
                             f"{' '.join(item)}")
        if not re.fullmatch(r"\d", item):
            raise ParseError(f"{item!r} is not a digit: the decoder sorts digits 0 to 9, as in ( 5 3 9 )")
        digits.append(int(item))
    if not digits:
        raise ParseError("no digits: type digits to sort such as ( 5 3 9 )")
    if len(digits) > max_digits:
        raise ParseError(f"{len(digits)} digits are too many for this model: its positions go up to "
                         f"{2 * max_digits + 3} tokens, so at most {max_digits} digits")
    return digits


class DecoderPlayer:
    """A DecoderLM loaded from a checkpoint, writing the sorted digits of prompts one token at a time."""

    def __init__(self, impl, model, header, temperature=0.0, top_k=None, top_p=None, seed=None):
        self.impl, self.model, self.header = impl, model, header
        self.max_seq_len = header["config"]["max_seq_len"]
        self.max_digits = (self.max_seq_len - 3) // 2  # the prompt n + 2 tokens, the answer n + 1
        trained = header.get("trained_with", {}).get("num_digits")
        self.trained = tuple(trained) if isinstance(trained, list) and len(trained) == 2 else None
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p
        self.rng = np.random.default_rng(seed)  # one generator for the session: the same seed, the same answers

    def write(self, prompt):
        """[(token, its probability, the last layer's attention (H, T) from the position that wrote it)] of the
        tokens written after prompt (token ids), until EOS or the limit."""
        tokens = list(prompt)
        steps = min(len(prompt) - 2 + 1 + EXTRA_TOKENS, self.max_seq_len - len(prompt))
        written = []
        for _ in range(steps):
            ids = np.array([tokens], dtype=np.int64)
            logits = np.asarray(self.model.forward(ids, np.ones(ids.shape, dtype=bool)))[0, -1]  # (V,)
            weights = np.array(self.model.blocks[-1].attention.last_attention_weights)[0, :, -1, :]  # (H, T)
            chosen = int(self.impl.sample_next(logits[None, :].copy(), self.rng, self.temperature, self.top_k,
                                               self.top_p)[0])
            written.append((chosen, analysis.probabilities(logits), weights))
            tokens.append(chosen)
            if chosen == self.impl.EOS_TOKEN:
                break
        return written

    def answer(self, line):
        """The text printed for one line of input (a ParseError's message for a line that is not a prompt)."""
        try:
            digits = parse_prompt(line, self.max_digits)
        except ParseError as error:
            return f"? {error}"
        prompt_text = "( " + " ".join(map(str, digits)) + " )"
        lines = []
        if " ".join(line.split()) != prompt_text:
            lines.append(f"read as: {prompt_text}")
        if self.trained and not self.trained[0] <= len(digits) <= self.trained[1]:
            low, high = self.trained
            lines.append(f"note: this model was trained on {low} to {high} digits; with {len(digits)} it was never "
                         f"taught what to write")
        prompt = [int(t) for t in self.impl.tokenize(prompt_text)]
        written = self.write(prompt)
        names = analysis.position_names(prompt + [token for token, _, _ in written], self.impl)
        text = self.impl.detokenize([token for token, _, _ in written])
        truth = " ".join(map(str, sorted(digits))) + " " + self.impl.detokenize([self.impl.EOS_TOKEN])
        right = [token for token, _, _ in written] == [int(t) for t in self.impl.tokenize(truth)]
        how = "greedy" if self.temperature == 0 else f"sampled at temperature {self.temperature:g}" + (
            f", top-k {self.top_k}" if self.top_k else "") + (f", top-p {self.top_p:g}" if self.top_p else "")
        lines.append(f"answer: {text}  ({how}; " + ("right" if right else f"wrong: sorted it is {truth}") + ")")
        lines.append(f"{'token':<6} {'probability':<16}  {'next likeliest':<16} the last layer looked at (mean of the "
                     f"heads; token@position weight)")
        rows = []
        for index, (token, probs, weights) in enumerate(written):
            mean = weights.mean(axis=0)  # (T,) over the prefix that wrote the token
            others = [v for v in np.argsort(-probs) if v != token][:1]
            other = " ".join(f"{self.impl.detokenize([int(v)]) or '[PAD]'} {probs[v]:.3f}" for v in others)
            top = np.argsort(-mean)[:3]
            looked = ", ".join(f"{names[p]}@{p} {mean[p]:.2f}" for p in top if mean[p] >= 0.005)
            name = names[len(prompt) + index]
            lines.append(f"{name:<6} {probs[token]:.3f} {bar(probs[token], 1.0, 10):<10}  {other:<16} {looked}")
            rows.append(np.concatenate([mean, np.zeros(len(names) - len(mean))]))
        lines.append(heatmap(np.array(rows), [f"wrote {names[len(prompt) + i]}" for i in range(len(written))],
                             names, title="attention of the last layer (mean of its heads) from the position that "
                             "wrote each token; later positions did not exist yet:"))
        return "\n".join(lines)


"""Lesson 12: a decoder-only language model that writes the digits of its prompt in sorted order."""

import numpy as np

from .causal import PreLNBlock
from .data import EOS_TOKEN, PAD_TOKEN, VOCAB, tokenize
from .embedding import Embedding, PositionalEncoding
from .kv_cache import KVCache, decode_step
from .layers import LayerNorm, Linear
from .loss import CrossEntropyLoss
from .validation import check_array, check_mask, check_positive_int, check_tokens


def generate_sorting_dataset(num_examples, num_digits=(2, 6), max_value=9, seed=None):
    """Random examples of the sorting task: the prompt "( 5 3 9 3 )", the answer "3 3 5 9 [EOS]".

    num_digits: int >= 1, or an inclusive range (low, high); each example draws its count uniformly
    max_value: digits are drawn uniformly from 0..max_value (1 <= max_value <= 9)
    returns: list of (prompt: list[int], answer: list[int]); the answer ends with EOS_TOKEN
    """
    num_examples = check_positive_int(num_examples, "num_examples", minimum=0)
    low, high = (num_digits, num_digits) if isinstance(num_digits, (int, np.integer)) else tuple(num_digits)
    low, high = check_positive_int(low, "num_digits"), check_positive_int(high, "num_digits")
    if high < low:
        raise ValueError(f"num_digits range ({low}, {high}) is empty: expected low <= high")
    max_value = check_positive_int(max_value, "max_value")
    if max_value > 9:
        raise ValueError(f"max_value must be at most 9 (one digit per token), got {max_value}")
    rng = np.random.default_rng(seed)
    dataset = []
    for count in rng.integers(low, high + 1, size=num_examples):
        digits = [int(d) for d in rng.integers(0, max_value + 1, size=count)]
        prompt = tokenize("( " + " ".join(map(str, digits)) + " )")
        answer = [VOCAB[str(d)] for d in sorted(digits)] + [EOS_TOKEN]
        dataset.append((prompt, answer))
    return dataset


def create_lm_batch(examples):
    """Teacher forcing: the model reads each sequence prompt + answer and predicts it shifted by one.

    examples: non-empty list of (prompt: list[int], answer: list[int])
    returns: inputs (B, T) int64, the sequences without their last token, right-padded with PAD;
             targets (B, T) int64, the sequences without their first token (the next token at each position);
             loss_mask (B, T) bool, True where the target is a token of the answer (EOS included);
             mask (B, T) bool, True on the real tokens of inputs
    where T is the longest len(prompt) + len(answer) - 1.
    """
    if len(examples) == 0:
        raise ValueError("create_lm_batch needs at least one example, got an empty list")
    for prompt, answer in examples:
        if len(prompt) == 0 or len(answer) == 0:
            raise ValueError("each example needs a non-empty prompt and a non-empty answer")
    # BEGIN SOLUTION
    lengths = np.array([len(p) + len(a) for p, a in examples])
    starts = np.array([len(p) for p, _ in examples])  # index in the sequence of the first answer token
    B, T = len(examples), int(lengths.max()) - 1
    sequences = np.full((B, T + 1), PAD_TOKEN, dtype=np.int64)
    for row, (prompt, answer) in enumerate(examples):
        sequences[row, : lengths[row]] = prompt + answer
    positions = np.arange(T)[None, :]  # target t is sequence token t + 1
    loss_mask = (positions + 1 >= starts[:, None]) & (positions + 1 < lengths[:, None])
    mask = positions < (lengths[:, None] - 1)
    return np.where(mask, sequences[:, :-1], PAD_TOKEN), sequences[:, 1:], loss_mask, mask  # last tokens: no input
    # END SOLUTION


class DecoderLM:
    """tokens (B, T) -> next-token logits (B, T, V) at every position, each seeing only its prefix.

    Embedding, sinusoidal positions, num_layers causal Pre-LN blocks, a final LayerNorm, then the output
    projection: `output` (Linear D -> V) or, with tie_weights=True, the embedding matrix itself
    (logits = h @ embedding.W.T, and `output` is None).
    """

    def __init__(self, vocab_size=20, embed_dim=64, num_heads=4, num_layers=2, ffn_dim=256, max_seq_len=50,
                 tie_weights=False):
        self.vocab_size = vocab_size
        self.embed_dim = embed_dim
        self.tie_weights = bool(tie_weights)
        self.embedding = Embedding(vocab_size, embed_dim)
        self.positional_encoding = PositionalEncoding(embed_dim, max_seq_len)
        self.blocks = [PreLNBlock(embed_dim, num_heads, ffn_dim) for _ in range(num_layers)]
        self.norm = LayerNorm(embed_dim)
        self.output = None if self.tie_weights else Linear(embed_dim, vocab_size)
        self.cache = None

    def forward(self, tokens, mask=None):
        """tokens: (B, T) int, mask: (B, T) bool or None (None means tokens != PAD) -> logits (B, T, V)"""
        check_tokens(tokens, self.vocab_size)
        mask = tokens != PAD_TOKEN if mask is None else mask
        check_mask(mask, tokens.shape)
        # BEGIN SOLUTION
        x = self.positional_encoding.forward(self.embedding.forward(tokens))  # (B, T, D)
        for block in self.blocks:
            x = block.forward(x, mask)
        h = self.norm.forward(x)  # (B, T, D)
        self.cache = h
        if self.tie_weights:
            return h @ self.embedding.W.T  # (B, T, V): the same matrix reads tokens in and writes them out
        return self.output.forward(h)
        # END SOLUTION

    def backward(self, grad_logits):
        """grad_logits: (B, T, V) -> None; adds into every parameter's gradient."""
        check_array(grad_logits, "grad_logits", ndim=3, last_dim=self.vocab_size)
        # BEGIN SOLUTION
        h = self.cache
        if self.tie_weights:
            self.embedding.grad_W += np.einsum("btv,btd->vd", grad_logits, h)  # the output's share of W
            dh = grad_logits @ self.embedding.W
        else:
            dh = self.output.backward(grad_logits)
        dx = self.norm.backward(dh)
        for block in reversed(self.blocks):
            dx = block.backward(dx)
        self.embedding.backward(self.positional_encoding.backward(dx))  # the input's share of W
        return None
        # END SOLUTION

    def get_parameters(self):
        """Every (param, grad) pair: embedding, each block in order, the final norm, the output layer (if any)."""
        pairs = self.embedding.get_parameters()
        for block in self.blocks:
            pairs += block.get_parameters()
        pairs += self.norm.get_parameters()
        return pairs if self.output is None else pairs + self.output.get_parameters()

    def zero_grad(self):
        for _, grad in self.get_parameters():
            grad.fill(0.0)

    def num_parameters(self):
        return sum(param.size for param, _ in self.get_parameters())

    def decode_step(self, tokens, cache):
        """tokens: (B, t) int appended after what cache (a KVCache) holds -> logits (B, t, V) (lesson 14)."""
        return decode_step(self, tokens, cache)

    def new_cache(self, batch_size):
        """An empty KVCache for batch_size sequences of up to max_seq_len tokens (lesson 14)."""
        first = self.blocks[0].attention
        return KVCache(batch_size, len(self.blocks), first.num_heads, first.head_dim,
                       self.positional_encoding.max_seq_len)


class SequenceCrossEntropyLoss:
    """Cross-entropy averaged over the positions that count (loss_mask True), and only those."""

    def __init__(self):
        self.cache = None

    def __call__(self, logits, targets, loss_mask):
        return self.forward(logits, targets, loss_mask)

    def forward(self, logits, targets, loss_mask):
        """logits: (B, T, V), targets: (B, T) int, loss_mask: (B, T) bool -> mean loss over counted positions"""
        check_array(logits, "logits", ndim=3)
        if not isinstance(targets, np.ndarray) or targets.dtype.kind not in "iu":
            raise TypeError(f"targets must be an integer numpy array of shape {logits.shape[:2]}")
        if targets.shape != logits.shape[:2]:
            raise ValueError(f"targets must have shape {logits.shape[:2]} (B, T), got {targets.shape}")
        if not isinstance(loss_mask, np.ndarray) or loss_mask.dtype != bool or loss_mask.shape != targets.shape:
            raise ValueError(f"loss_mask must be a boolean array of shape {targets.shape} (B, T)")
        if not loss_mask.any():
            raise ValueError("loss_mask counts no position: the loss would be 0 / 0")
        # BEGIN SOLUTION
        inner = CrossEntropyLoss()  # lesson 06 on the counted positions, as one flat batch
        loss = inner.forward(logits[loss_mask], targets[loss_mask])
        self.cache = (inner, loss_mask, logits.shape)
        return float(loss)
        # END SOLUTION

    def backward(self):
        """-> (B, T, V): zero at the positions that do not count"""
        # BEGIN SOLUTION
        inner, loss_mask, shape = self.cache
        grad = np.zeros(shape)
        grad[loss_mask] = inner.backward()
        return grad
        # END SOLUTION


def lm_train_step(model, inputs, targets, loss_mask, loss_fn, optimizer, mask=None):
    """One step of training the language model; returns the batch's loss before the step."""
    # BEGIN WORKED EXAMPLE
    # the same four moves as lesson 08's train_step; only the loss sees which positions count
    model.zero_grad()
    loss = loss_fn.forward(model.forward(inputs, mask), targets, loss_mask)
    model.backward(loss_fn.backward())
    optimizer.step()
    return float(loss)
    # END WORKED EXAMPLE


def exact_match_accuracy(model, examples, batch_size=256):
    """The fraction of examples whose whole answer the model gets right under teacher forcing: at every
    counted position the argmax of the logits is the target. This is the fraction greedy decoding writes
    exactly right, since greedy decoding follows the argmax and stops at EOS.

    examples: non-empty list of (prompt, answer) -> float in [0, 1]; parameters are not changed
    """
    if len(examples) == 0:
        raise ValueError("exact_match_accuracy needs at least one example")
    # BEGIN SOLUTION
    correct = 0
    for first in range(0, len(examples), batch_size):
        inputs, targets, loss_mask, mask = create_lm_batch(examples[first:first + batch_size])
        right = (model.forward(inputs, mask).argmax(axis=-1) == targets) | ~loss_mask
        correct += int(right.all(axis=1).sum())
    return correct / len(examples)
    # END SOLUTION

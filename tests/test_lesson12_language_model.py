"""Lesson 12: a decoder-only language model: teacher forcing, the decoder, its backward (tied or not), the loss
over the answer, exact-sequence accuracy, and a short training run."""

import numpy as np
import pytest
from pytest_check import check

from kata.course.contract import get_path, grad_path
from kata.course.manifest import reread
from tests.helpers import (
    assert_close,
    assert_gradients,
    assert_raises,
    assert_shape,
    call,
    draw_params,
    pick,
    seed,
    seeded,
    set_params,
    shapes,
)

pytestmark = pytest.mark.lesson12

SEE_BATCH = reread("12", "Teacher forcing")
SEE_FORWARD = reread("12", "The decoder")
SEE_BACK = reread("12", "Backward through the decoder")
SEE_TIE = reread("12", "Weight tying")
SEE_LOSS = reread("12", "The loss over the answer")
SEE_EXACT = reread("12", "Exact-sequence accuracy")
SEE_TRAIN = reread("12", "Training the decoder")

V, D, H, F, L = 20, 8, 2, 12, 2  # a small DecoderLM, so that a gradient check of every parameter stays fast
PAD, EOS, OPEN, CLOSE = 0, 1, 17, 18
DIGIT = 2  # the id of the digit 0; digit d is DIGIT + d


def kind(tied):
    return "DecoderLM tied" if tied else "DecoderLM"


def paths(tied, num_layers=L):
    return list(shapes(kind(tied), D, F, V, num_layers))


def make_model(module, params, tied, num_layers=L, **sizes):
    """A DecoderLM of module (the implementation under test, or the reference in a compute) holding params."""
    model = module.DecoderLM(vocab_size=V, embed_dim=sizes.get("D", D), num_heads=H, num_layers=num_layers,
                             ffn_dim=sizes.get("F", F), max_seq_len=24, tie_weights=tied)
    set_params(model, params)
    return model


def sorting_examples(rng, counts):
    """(prompt, answer) pairs of the sorting task drawn by the test: '( d d d )' -> 'sorted digits [EOS]'."""
    examples = []
    for count in counts:
        digits = [int(d) for d in rng.integers(0, 10, size=count)]
        examples.append(([OPEN] + [DIGIT + d for d in digits] + [CLOSE], [DIGIT + d for d in sorted(digits)] + [EOS]))
    return examples


def teacher_forcing(examples):
    """The test's own create_lm_batch: (inputs, targets, loss_mask, mask), written row by row."""
    T = max(len(p) + len(a) for p, a in examples) - 1
    arrays = (np.full((len(examples), T), PAD, dtype=np.int64), np.full((len(examples), T), PAD, dtype=np.int64),
              np.zeros((len(examples), T), dtype=bool), np.zeros((len(examples), T), dtype=bool))
    inputs, targets, loss_mask, mask = arrays
    for b, (prompt, answer) in enumerate(examples):
        sequence = list(prompt) + list(answer)
        for t in range(len(sequence) - 1):
            inputs[b, t], targets[b, t], mask[b, t] = sequence[t], sequence[t + 1], True
            loss_mask[b, t] = t + 1 >= len(prompt)  # the next token is one of the answer's
    return arrays


def log_softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def forward_of(model, tokens, mask=None, what="DecoderLM.forward"):
    logits = call(model.forward, tokens, mask, what=what, see=SEE_FORWARD)
    assert_shape(logits, (*tokens.shape, V), f"{what} on tokens of shape {tokens.shape}: logits (B, T, V)",
                 SEE_FORWARD)
    return logits


def reference_forward(params, tied, tokens, mask):
    def compute(ref):
        return make_model(ref, params, tied).forward(tokens, mask)
    return compute


def reference_gradients(params, tied, tokens, mask, grad):
    def compute(ref):
        model = make_model(ref, params, tied)
        model.zero_grad()
        model.forward(tokens, mask)
        model.backward(grad)
        return {path: np.array(get_path(model, grad_path(path))) for path in paths(tied)}
    return compute


def batch_of(rng, B):
    """tokens (B, T) right-padded, each row a prompt and part of its answer, and its mask."""
    inputs, _, _, mask = teacher_forcing(sorting_examples(rng, rng.integers(1, 5, size=B)))
    return inputs, mask


# ---------------------------------------------------------------- teacher forcing

def test_create_lm_batch_by_hand(impl):
    examples = [([OPEN, 9, 7, CLOSE], [7, 9, EOS]), ([OPEN, 6, CLOSE], [6, EOS])]  # ( 7 5 ) -> 5 7; ( 4 ) -> 4
    got = call(impl.create_lm_batch, examples, what="create_lm_batch", see=SEE_BATCH)
    assert isinstance(got, tuple) and len(got) == 4, (
        f"create_lm_batch: expected a tuple (inputs, targets, loss_mask, mask), got {type(got).__name__}; {SEE_BATCH}")
    expected = (np.array([[OPEN, 9, 7, CLOSE, 7, 9], [OPEN, 6, CLOSE, 6, PAD, PAD]]),
                np.array([[9, 7, CLOSE, 7, 9, EOS], [6, CLOSE, 6, EOS, PAD, PAD]]),
                np.array([[False, False, False, True, True, True], [False, False, True, True, False, False]]),
                np.array([[True] * 6, [True, True, True, True, False, False]]))
    for name, value, want, dtype in zip(("inputs", "targets", "loss_mask", "mask"), got, expected,
                                        (np.int64, np.int64, bool, bool)):
        what = (f"create_lm_batch on '( 7 5 ) 5 7 [EOS]' and '( 4 ) 4 [EOS]': {name} (the sequences without their "
                f"{'last' if name == 'inputs' else 'first'} token, PAD after the end; loss_mask True where the target "
                f"is an answer token, EOS included; mask True on real input tokens)")
        with check:
            assert_shape(value, want.shape, what, SEE_BATCH)
            assert value.dtype == dtype, f"{what}: expected dtype {np.dtype(dtype)}, got {value.dtype}; {SEE_BATCH}"
            assert np.array_equal(value, want), f"{what}:\n expected {want.tolist()}\n got      {value.tolist()}; " \
                                                f"{SEE_BATCH}"
    assert_raises(ValueError, "create_lm_batch([])", SEE_BATCH, impl.create_lm_batch, [])


@pytest.mark.parametrize("k", [1, 2])
def test_create_lm_batch_on_random_examples(impl, k):
    rng = seeded(1200 + k)
    examples = sorting_examples(rng, rng.integers(1, pick(7, 5, 9), size=pick(6, 3, 11)))
    got = call(impl.create_lm_batch, examples, what="create_lm_batch", see=SEE_BATCH)
    for name, value, want in zip(("inputs", "targets", "loss_mask", "mask"), got, teacher_forcing(examples)):
        with check:
            assert isinstance(value, np.ndarray) and value.shape == want.shape and np.array_equal(value, want), (
                f"create_lm_batch on {len(examples)} sorting examples of lengths "
                f"{[len(p) + len(a) for p, a in examples]}: {name} differs from the sequences shifted by one "
                f"(expected {want.tolist()}, got {np.asarray(value).tolist()}); {SEE_BATCH}")


# ---------------------------------------------------------------- the decoder

@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_decoder_logits_at_every_position(impl, tied):
    rng = seeded(1210)
    model = make_model(impl, draw_params(shapes(kind(tied), D, F, V, L), rng), tied)
    for B, T in pick([(1, 1), (3, 5)], [(2, 7), (4, 2)]):
        forward_of(model, rng.integers(2, V, size=(B, T)), what=f"DecoderLM(tie_weights={tied}).forward")


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
@pytest.mark.parametrize("masked", [False, True], ids=["mask-None", "mask"])
def test_decoder_matches_the_reference(impl, expect, tied, masked):
    rng = seeded(1211 + 2 * tied + masked)
    params = draw_params(shapes(kind(tied), D, F, V, L), rng)
    tokens, mask = batch_of(rng, pick(3, 2, 5))
    mask = mask if masked else None
    expected = expect(reference_forward(params, tied, tokens, mask))
    logits = forward_of(make_model(impl, params, tied), tokens, mask)
    assert_close(logits, expected, f"DecoderLM(tie_weights={tied}).forward on a right-padded batch, "
                 f"mask {'given' if masked else 'None (tokens != PAD)'}: embedding + positions, causal Pre-LN "
                 f"blocks, the final norm, then the output {'(h @ embedding.W.T)' if tied else 'layer'}", SEE_FORWARD)


def test_decoder_reads_the_parameters_as_they_are(impl):
    rng = seeded(1215)
    params = draw_params(shapes("DecoderLM", D, F, V, L), rng)
    model = make_model(impl, params, False)
    tokens, mask = batch_of(rng, 2)
    before = np.array(forward_of(model, tokens, mask))
    model.norm.gamma *= 2.0
    model.norm.beta += 0.5
    after = forward_of(model, tokens, mask)
    assert not np.allclose(before, after), (
        f"DecoderLM.forward gave the same logits after model.norm.gamma and beta changed: the final LayerNorm "
        f"(model.norm) must come after the last block; {SEE_FORWARD}")


def test_decoder_logits_do_not_depend_on_later_tokens(impl):
    rng = seeded(1216)
    model = make_model(impl, draw_params(shapes("DecoderLM", D, F, V, L), rng), False)
    T = pick(7, 6, 9)
    tokens = rng.integers(2, V, size=(2, T))
    base = np.array(forward_of(model, tokens))
    for t in range(T - 1):
        changed = tokens.copy()
        changed[:, t + 1:] = rng.integers(2, V, size=(2, T - t - 1))
        logits = forward_of(model, changed)
        assert np.array_equal(logits[:, :t + 1], base[:, :t + 1]), (
            f"DecoderLM.forward: changing the tokens after position {t} changed the logits at positions 0..{t}: "
            f"position t must see tokens 0..t only (causal blocks); {SEE_FORWARD}")


def test_decoder_default_mask_is_the_padding(impl):
    rng = seeded(1217)
    model = make_model(impl, draw_params(shapes("DecoderLM", D, F, V, L), rng), False)
    tokens, mask = batch_of(rng, 3)
    tokens = tokens.copy()
    tokens[0, 1] = PAD  # a PAD among real tokens: masked as a key when mask is None
    mask = tokens != PAD
    assert_close(forward_of(model, tokens), forward_of(model, tokens, mask),
                 "DecoderLM.forward(tokens) and DecoderLM.forward(tokens, tokens != PAD): mask None means the PAD "
                 "tokens are no keys", SEE_FORWARD)


# ---------------------------------------------------------------- backward, parameters, weight tying

@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_decoder_gradients(impl, tied):
    rng = seeded(1220 + tied)
    model = make_model(impl, draw_params(shapes(kind(tied), D, F, V, L), rng), tied)
    tokens, mask = batch_of(rng, pick(2, 3))
    assert_gradients(f"DecoderLM(embed_dim={D}, num_heads={H}, num_layers={L}, ffn_dim={F}, tie_weights={tied}) on "
                     f"a right-padded batch", SEE_TIE if tied else SEE_BACK,
                     forward=lambda: model.forward(tokens, mask), backward=model.backward, params=paths(tied),
                     owner=model, zero_grad=model.zero_grad, seed=seed(1220 + tied))


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_decoder_backward_matches_the_reference_and_accumulates(impl, expect, tied):
    rng = seeded(1222 + tied)
    params = draw_params(shapes(kind(tied), D, F, V, L), rng)
    tokens, mask = batch_of(rng, pick(3, 2, 4))
    grad = rng.standard_normal((*tokens.shape, V))
    expected = expect(reference_gradients(params, tied, tokens, mask, grad))
    model = make_model(impl, params, tied)
    model.zero_grad()
    forward_of(model, tokens, mask)
    returned = call(model.backward, grad, what="DecoderLM.backward", see=SEE_BACK)
    assert returned is None, f"DecoderLM.backward: expected None (the input was token ids); {SEE_BACK}"
    see = SEE_TIE if tied else SEE_BACK
    once = {path: np.array(get_path(model, grad_path(path))) for path in paths(tied)}
    both = " (both uses of W: the input lookup and the output projection)" if tied else ""
    for path in paths(tied):
        with check:
            assert_close(once[path], expected[path], f"DecoderLM(tie_weights={tied}): {grad_path(path)} after one "
                         f"backward{both if path == 'embedding.W' else ''}", see)
    forward_of(model, tokens, mask)
    call(model.backward, grad, what="DecoderLM.backward", see=SEE_BACK)
    for path in paths(tied):
        with check:
            assert_close(get_path(model, grad_path(path)), 2 * once[path],
                         f"DecoderLM: {grad_path(path)} after two backward passes (gradients add up, +=)", SEE_BACK)


def test_tied_model_has_no_output_layer(impl):
    model = impl.DecoderLM(tie_weights=True)
    assert model.output is None, f"DecoderLM(tie_weights=True).output: expected None, got {model.output!r}; {SEE_TIE}"
    pairs = model.get_parameters()
    count = sum(np.asarray(p).size for p, _ in pairs)
    assert count == 100_864, (f"DecoderLM(tie_weights=True): expected 100,864 parameters in get_parameters() "
                              f"(no output layer: the embedding is the output projection), got {count:,}; {SEE_TIE}")
    assert pairs[0][0] is model.embedding.W and sum(p is model.embedding.W for p, _ in pairs) == 1, (
        f"DecoderLM(tie_weights=True).get_parameters(): embedding.W must come first and only once (one array, "
        f"one gradient holding both uses); {SEE_TIE}")


def test_default_decoder_parameters_in_order(impl):
    model = impl.DecoderLM()
    pairs = model.get_parameters()
    count = sum(np.asarray(p).size for p, _ in pairs)
    assert count == 102_164, f"DecoderLM(): expected 102,164 parameters in get_parameters(), got {count:,}; {SEE_BACK}"
    order = [model.embedding.W] + [p for block in model.blocks for p, _ in block.get_parameters()] + \
            [model.norm.gamma, model.norm.beta, model.output.W, model.output.b]
    assert len(pairs) == len(order) and all(p is q for (p, _), q in zip(pairs, order)), (
        f"DecoderLM().get_parameters(): expected the pairs of embedding, each block in order, norm, then output "
        f"(the very arrays, not copies); {SEE_BACK}")
    model.zero_grad()
    for p, g in model.get_parameters():
        g += 1.0
    model.zero_grad()
    assert all(np.all(g == 0) for _, g in pairs), f"DecoderLM.zero_grad: every gradient array must be 0; {SEE_BACK}"


# ---------------------------------------------------------------- the loss over the answer

def loss_and_grad(logits, targets, loss_mask):
    """The test's own masked cross-entropy and its gradient: one-hot rows from the identity matrix."""
    counted = loss_mask.sum()
    picked = np.take_along_axis(log_softmax(logits), targets[..., None], axis=-1)[..., 0]
    loss = -(picked * loss_mask).sum() / counted
    grad = (np.exp(log_softmax(logits)) - np.eye(logits.shape[-1])[targets]) * loss_mask[..., None] / counted
    return loss, grad


def test_sequence_loss_by_hand(impl):
    logits = np.zeros((1, 3, 4))
    logits[0, 1] = [0.0, 0.0, np.log(2.0), 0.0]  # probabilities 1/5, 1/5, 2/5, 1/5
    targets = np.array([[3, 2, 0]])
    loss_mask = np.array([[False, True, True]])
    loss_fn = impl.SequenceCrossEntropyLoss()
    got = call(loss_fn.forward, logits, targets, loss_mask, what="SequenceCrossEntropyLoss.forward", see=SEE_LOSS)
    by_hand = (np.log(5 / 2) + np.log(4.0)) / 2  # the two counted positions only: -log(2/5) and -log(1/4)
    assert_close(got, by_hand, "SequenceCrossEntropyLoss.forward: positions 1 and 2 counted, position 0 not: "
                 "(log(5/2) + log 4) / 2, the mean over the counted positions", SEE_LOSS)
    assert_raises(ValueError, "SequenceCrossEntropyLoss.forward with a loss_mask that counts nothing", SEE_LOSS,
                  impl.SequenceCrossEntropyLoss().forward, np.zeros((1, 2, 3)), np.zeros((1, 2), dtype=np.int64),
                  np.zeros((1, 2), dtype=bool))


@pytest.mark.parametrize("k", [1, 2])
def test_sequence_loss_and_gradient(impl, k):
    rng = seeded(1230 + k)
    B, T = pick((3, 5), (2, 7), (4, 3))
    logits = rng.standard_normal((B, T, V)) * 3
    targets = rng.integers(0, V, size=(B, T))
    loss_mask = rng.random((B, T)) < 0.5
    loss_mask[0, 0] = True
    loss, grad = loss_and_grad(logits, targets, loss_mask)
    loss_fn = impl.SequenceCrossEntropyLoss()
    got = call(loss_fn, logits, targets, loss_mask, what="SequenceCrossEntropyLoss(logits, targets, loss_mask)",
               see=SEE_LOSS)
    assert_close(got, loss, f"SequenceCrossEntropyLoss on (B, T, V) = {(B, T, V)} with {loss_mask.sum()} of {B * T} "
                 f"positions counted: the mean cross-entropy over the counted positions", SEE_LOSS)
    got_grad = call(loss_fn.backward, what="SequenceCrossEntropyLoss.backward", see=SEE_LOSS)
    assert_shape(got_grad, (B, T, V), "SequenceCrossEntropyLoss.backward", SEE_LOSS)
    with check:
        assert np.all(got_grad[~loss_mask] == 0), (
            f"SequenceCrossEntropyLoss.backward: the gradient must be exactly 0 at positions that do not count; "
            f"{SEE_LOSS}")
    assert_close(got_grad, grad, "SequenceCrossEntropyLoss.backward: (softmax - one_hot) / (the number of counted "
                 "positions) at the counted positions, 0 elsewhere", SEE_LOSS)


# ---------------------------------------------------------------- exact-sequence accuracy

def own_count(model, examples):
    """How many examples the model gets wholly right under teacher forcing, each example run alone through
    model.forward: the argmax at every answer position is the target."""
    right = 0
    for example in examples:
        inputs, targets, loss_mask, mask = teacher_forcing([example])
        predicted = forward_of(model, inputs, mask).argmax(axis=-1)
        right += bool(np.all(predicted[loss_mask] == targets[loss_mask]))
    return right


def test_exact_match_by_hand(impl):
    """A model whose logits favour one token everywhere: only answers made of that token count as right."""
    params = {path: np.full(shape, 1.0 if path.endswith("gamma") else 0.0)
              for path, shape in shapes("DecoderLM", D, F, V, L).items()}
    params["output.b"][DIGIT + 3] = 5.0  # no weights: every position predicts the digit 3
    model = make_model(impl, params, False)
    examples = [([OPEN, DIGIT + 3, CLOSE], [DIGIT + 3]),  # right: the answer is "3"
                ([OPEN, DIGIT + 3, DIGIT + 3, CLOSE], [DIGIT + 3, DIGIT + 3]),  # right
                ([OPEN, DIGIT + 3, CLOSE], [DIGIT + 3, EOS]),  # wrong at the last position only
                ([OPEN, DIGIT + 5, CLOSE], [DIGIT + 5])]  # wrong; its prompt tokens are never counted
    got = call(impl.exact_match_accuracy, model, examples, what="exact_match_accuracy", see=SEE_EXACT)
    assert_close(got, 0.5, "exact_match_accuracy of a model that writes the digit 3 everywhere, on the answers "
                 "'3', '3 3', '3 [EOS]' and '5': 2 of 4 (one wrong position makes a sequence wrong; the prompt "
                 "does not count)", SEE_EXACT)


@pytest.mark.parametrize("batch_size", [2, 256])
def test_exact_match_counts_whole_sequences(impl, batch_size):
    rng = seeded(1240 + batch_size)
    params = draw_params(shapes("DecoderLM", D, F, V, L), rng, scale=0.3)
    model = make_model(impl, params, False)
    examples = sorting_examples(rng, rng.integers(1, 4, size=pick(9, 7, 12)))
    for example in examples[::2]:  # make some answers the model's own argmax chain, so that some are right
        for _ in range(len(example[1])):
            inputs, targets, loss_mask, mask = teacher_forcing([example])
            predicted = forward_of(model, inputs, mask).argmax(axis=-1)[0]
            wrong = np.flatnonzero((predicted != targets[0]) & loss_mask[0])
            if not wrong.size:
                break
            position = wrong[0] + 1 - len(example[0])
            example[1][position] = int(predicted[wrong[0]])
    expected = own_count(model, examples) / len(examples)
    before = {path: np.array(get_path(model, path)) for path in shapes("DecoderLM", D, F, V, L)}
    got = call(impl.exact_match_accuracy, model, examples, batch_size, what="exact_match_accuracy", see=SEE_EXACT)
    assert 0 < expected < 1, f"the test's examples should be partly right, got {expected}"  # a test's own check
    assert_close(got, expected, f"exact_match_accuracy(model, {len(examples)} examples, batch_size={batch_size}): the "
                 f"fraction whose every answer position (EOS included) is the argmax, counted by the test "
                 f"running each example alone", SEE_EXACT)
    assert all(np.array_equal(get_path(model, path), value) for path, value in before.items()), (
        f"exact_match_accuracy changed the model's parameters; {SEE_EXACT}")


# ---------------------------------------------------------------- training

def test_decoder_learns_to_sort_a_little(impl):
    """A small decoder, its own Adam and loss, 150 steps on 2-3 digits from 0..3; the test measures the held-out
    loss itself, before and after."""
    np.random.seed(seed(1250))  # the initialisation draws from NumPy's global generator
    rng = seeded(1251)
    model = impl.DecoderLM(vocab_size=V, embed_dim=16, num_heads=2, num_layers=1, ffn_dim=32, max_seq_len=16)
    optimizer = impl.Adam(model.get_parameters(), learning_rate=1e-2)
    loss_fn = impl.SequenceCrossEntropyLoss()

    def draw(count):
        examples = []
        for n in rng.integers(2, 4, size=count):
            digits = [int(d) for d in rng.integers(0, 4, size=n)]
            examples.append(([OPEN] + [DIGIT + d for d in digits] + [CLOSE],
                             [DIGIT + d for d in sorted(digits)] + [EOS]))
        return examples

    held_out = teacher_forcing(draw(200))

    def held_out_loss():
        inputs, targets, loss_mask, mask = held_out
        return loss_and_grad(forward_of(model, inputs, mask), targets, loss_mask)[0]

    before = held_out_loss()
    for _ in range(150):
        inputs, targets, loss_mask, mask = teacher_forcing(draw(32))
        call(impl.lm_train_step, model, inputs, targets, loss_mask, loss_fn, optimizer, mask,
             what="lm_train_step", see=SEE_TRAIN)
    after = held_out_loss()
    assert after < 0.5 * before, (
        f"a small DecoderLM trained 150 steps (Adam, lr 1e-2) on sorting 2-3 digits: the held-out loss the test "
        f"measured went from {before:.3f} to {after:.3f}, expected below half of the start; {SEE_TRAIN}")

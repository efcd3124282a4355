"""Lesson 09: per-operation accuracy, attention entropy, gradient-norm clipping, warm-up and cosine decay."""

import math

import numpy as np
import pytest
from pytest_check import check

from kata.course.manifest import reread
from tests.helpers import assert_close, call, draw_params, get_path, pick, seed, seeded, set_params, shapes

pytestmark = pytest.mark.lesson09

SEE_OPS = reread("09", "Per-operation accuracy")
SEE_ENTROPY = reread("09", "Attention entropy")
SEE_CLIP = reread("09", "Gradient clipping")
SEE_LR = reread("09", "Learning-rate schedules")

CFG = dict(vocab_size=20, embed_dim=8, num_heads=2, num_layers=2, ffn_dim=12)
OPS = ("First", "Second", "Last", "Max", "Min")
OP_ID = {"First": 12, "Second": 13, "Last": 14, "Max": 15, "Min": 16}
ANSWER = {"First": lambda a: a[0], "Second": lambda a: a[1], "Last": lambda a: a[-1], "Max": max, "Min": min}


def example(op, args):
    """("Op ( a b ... )" as token ids, the answer's token id); digit d has id d + 2."""
    return [OP_ID[op], 17, *[a + 2 for a in args], 18], ANSWER[op](args) + 2


# ---------------------------------------------------------------- per_operation_accuracy

# a model that always answers "5" gets: First 1/2, Second 1/1, Last 0/3, Max 3/4, Min 1/3
ALWAYS_FIVE = [example("Max", [5, 3, 1]), example("First", [5, 3, 9]), example("Last", [5, 3]),
               example("Min", [5, 6, 7]), example("Max", [2, 5]), example("Second", [1, 5, 4]),
               example("Last", [2, 5, 8]), example("First", [2, 5]), example("Min", [6, 7]),
               example("Max", [4, 5, 0, 1]), example("Last", [0, 1, 2, 3]), example("Max", [9, 5]),
               example("Min", [0, 5])]
ALWAYS_FIVE_ACCURACY = {"First": 0.5, "Second": 1.0, "Last": 0.0, "Max": 0.75, "Min": 1 / 3}


def always_answering(impl, token):
    """A Transformer whose logits are the same for every input: output.W = 0, output.b favours one token."""
    model = impl.Transformer(**CFG)
    model.output.W = np.zeros((8, 20))
    model.output.b = np.where(np.arange(20) == token, 5.0, 0.0)
    return model


def check_accuracies(result, expected, what):
    assert isinstance(result, dict), (f"{what} must return a dict {{operation: accuracy}}, got "
                                      f"{type(result).__name__}; {SEE_OPS}")
    with check:
        assert sorted(result) == sorted(OPS), (
            f"{what} must have exactly the keys {list(OPS)} (the operation names), got {list(result)}; {SEE_OPS}")
    for op in OPS:
        if op in result:
            with check:
                assert_close(result[op], expected[op], f"{what}[{op!r}]: the fraction of the {op} examples predicted "
                             f"right", SEE_OPS)


def test_per_operation_accuracy_of_a_model_that_always_answers_five(impl):
    model = always_answering(impl, 7)  # token 7 is the digit "5"
    result = call(impl.per_operation_accuracy, model, ALWAYS_FIVE, what="per_operation_accuracy", see=SEE_OPS)
    check_accuracies(result, ALWAYS_FIVE_ACCURACY, "per_operation_accuracy(a model that always answers 5, 13 examples "
                     "of 2 to 4 arguments: First 1 of 2 right, Second 1 of 1, Last 0 of 3, Max 3 of 4, Min 1 of 3)")
    with check:
        assert all(isinstance(v, (float, np.floating)) and 0.0 <= v <= 1.0 for v in result.values()), (
            f"every accuracy must be a float in [0, 1], got {result}; {SEE_OPS}")


def test_per_operation_accuracy_of_another_constant_model(impl):
    data = [example("Last", [1, 2, 0]), example("Min", [3, 0]), example("First", [0, 4, 4]),
            example("Second", [3, 0, 9, 9]), example("Max", [0, 0]), example("Second", [0, 0]),
            example("Min", [0, 1, 2, 3]), example("Last", [7, 7])]
    model = always_answering(impl, 2)  # token 2 is the digit "0"
    result = call(impl.per_operation_accuracy, model, data, what="per_operation_accuracy", see=SEE_OPS)
    check_accuracies(result, {"First": 1.0, "Second": 1.0, "Last": 0.5, "Max": 1.0, "Min": 1.0},
                     "per_operation_accuracy(a model that always answers 0, 8 examples: only Last ( 7 7 ) is wrong)")


def trained_reference(cfg, params, data_seed):
    """compute for expect(): a reference Transformer of sizes cfg, from params, after 30 Adam steps on 80 examples of
    2 to 4 arguments (partly trained: its accuracies differ from one operation to another); the examples, its
    parameters and its per_operation_accuracy on them."""
    def compute(ref):
        data = ref.generate_tokenized_dataset(80, num_args=(2, 4), seed=data_seed)
        reference = ref.Transformer(**cfg)
        set_params(reference, params)
        optimizer, loss_fn = ref.Adam(reference.get_parameters(), learning_rate=0.03), ref.CrossEntropyLoss()
        tokens, targets, mask = ref.create_batch(data)
        for _ in range(30):
            ref.train_step(reference, tokens, targets, loss_fn, optimizer, mask)
        return {"data": data, "params": {path: get_path(reference, path) for path in params},
                "accuracy": ref.per_operation_accuracy(reference, data)}
    return compute


def test_per_operation_accuracy_matches_the_reference(impl, expect):
    cfg = pick(CFG, dict(vocab_size=20, embed_dim=12, num_heads=3, num_layers=1, ffn_dim=16),
               dict(vocab_size=20, embed_dim=6, num_heads=1, num_layers=3, ffn_dim=10))
    D, F, L = cfg["embed_dim"], cfg["ffn_dim"], cfg["num_layers"]
    params = draw_params(shapes("Transformer", D, F, 20, L), seeded(2), scale=0.2)
    expected = expect(trained_reference(cfg, params, seed(2)))
    model = impl.Transformer(**cfg)
    set_params(model, expected["params"])
    data = expected["data"]
    result = call(impl.per_operation_accuracy, model, data, what="per_operation_accuracy", see=SEE_OPS)
    check_accuracies(result, expected["accuracy"], f"per_operation_accuracy(a partly trained model, "
                     f"{len(data)} examples of 2 to 4 arguments)")


# ---------------------------------------------------------------- attention_entropy

def entropy_of(weights):
    """-sum(w ln w) over the last axis, 0 ln 0 = 0."""
    weights = np.asarray(weights, dtype=np.float64)
    return -(weights * np.log(np.where(weights > 0, weights, 1.0))).sum(axis=-1)


@pytest.mark.parametrize("T", [1, 2, 5, 7])
def test_attention_entropy_of_uniform_rows_is_ln_T(impl, T):
    weights = np.full((2, 3, T), 1.0 / T)
    result = call(impl.attention_entropy, weights, what="attention_entropy", see=SEE_ENTROPY)
    assert_close(result, np.full((2, 3), math.log(T)), f"attention_entropy(rows of shape (2, 3, {T}) all equal to "
                 f"1/{T}): ln {T} = {math.log(T):.6f} nats (natural log, not bits)", SEE_ENTROPY)


def test_attention_entropy_of_one_hot_rows_is_zero(impl):
    weights = np.eye(4)[None, None].repeat(2, axis=1)  # (1, 2, 4, 4): each query attends to one key
    with np.errstate(all="ignore"):
        result = call(impl.attention_entropy, weights, what="attention_entropy", see=SEE_ENTROPY)
    assert_close(result, np.zeros((1, 2, 4)), "attention_entropy(one-hot rows): 0, with 0 * ln 0 taken as 0 "
                 "(not NaN)", SEE_ENTROPY)


def test_attention_entropy_by_hand(impl):
    weights = np.array([[0.5, 0.25, 0.25, 0.0], [0.5, 0.0, 0.5, 0.0], [0.1, 0.2, 0.3, 0.4]])
    with np.errstate(all="ignore"):
        result = call(impl.attention_entropy, weights, what="attention_entropy", see=SEE_ENTROPY)
    expected = [1.5 * math.log(2), math.log(2), -sum(w * math.log(w) for w in (0.1, 0.2, 0.3, 0.4))]
    assert_close(result, expected, "attention_entropy([[0.5, 0.25, 0.25, 0], [0.5, 0, 0.5, 0], [0.1, 0.2, 0.3, "
                 "0.4]]): 1.5 ln 2, ln 2 and -sum(w ln w)", SEE_ENTROPY)


@pytest.mark.parametrize("shape", [(4,), (3, 1), (2, 5), (2, 3, 4, 4), (1, 2, 1, 1)])
def test_attention_entropy_shapes(impl, shape):
    rng = seeded(3)
    weights = rng.random(shape) + 0.1
    weights /= weights.sum(axis=-1, keepdims=True)
    result = call(impl.attention_entropy, weights, what="attention_entropy", see=SEE_ENTROPY)
    with check:
        assert np.shape(result) == shape[:-1], (
            f"attention_entropy(weights of shape {shape}) must have shape weights.shape[:-1] = {shape[:-1]}, got "
            f"{np.shape(result)}; {SEE_ENTROPY}")
    if np.shape(result) == shape[:-1]:
        assert_close(np.asarray(result, dtype=np.float64), entropy_of(weights),
                     f"attention_entropy(random rows of shape {shape})", SEE_ENTROPY)


def test_attention_entropy_of_masked_attention(impl, expect):
    D, H = pick((8, 2), (12, 3), (6, 1))
    params = draw_params(shapes("MultiHeadAttention", D), seeded(4))
    x = seeded(5).standard_normal((2, 5, D))
    mask = np.array([[True, True, True, False, False], [True, True, True, True, True]])

    def compute(ref):
        attention = ref.MultiHeadAttention(D, H)
        set_params(attention, params)
        attention.forward(x, mask)
        return attention.last_attention_weights

    weights = np.array(expect(compute))  # (2, H, 5, 5), exact zeros on the masked keys
    with np.errstate(all="ignore"):
        result = call(impl.attention_entropy, weights, what="attention_entropy", see=SEE_ENTROPY)
    with check:
        assert_close(result, entropy_of(weights), f"attention_entropy(the {weights.shape} weights of a masked "
                     f"attention, with exact zeros)", SEE_ENTROPY)
    with check:
        assert np.all(np.asarray(result)[0] <= math.log(3) + 1e-12), (
            f"a row that may attend to 3 keys has entropy at most ln 3 = {math.log(3):.6f}; got "
            f"{np.asarray(result)[0].max():.6f}; {SEE_ENTROPY}")


# ---------------------------------------------------------------- clip_grad_norm

def grad_pairs(*grads):
    return [(np.ones(np.shape(g)), np.array(g, dtype=np.float64)) for g in grads]


def test_clip_grad_norm_scales_all_gradients_together(impl):
    pairs = grad_pairs([3.0, 4.0], [[12.0]])  # norms 5 and 12, global norm 13
    grads = [g for _, g in pairs]
    norm = impl.clip_grad_norm(pairs, 6.5)
    with check:
        assert_close(norm, 13.0, "clip_grad_norm(gradients [3, 4] and [[12]], max_norm=6.5) returns the global norm "
                     "before clipping, sqrt(9 + 16 + 144) = 13", SEE_CLIP)
    with check:
        assert all(g is h for (_, g), h in zip(pairs, grads)), (
            f"clip_grad_norm must scale the gradient arrays in place (g *= scale), not replace them; {SEE_CLIP}")
    with check:
        assert_close(pairs[0][1], [1.5, 2.0], "the first gradient after clip_grad_norm(max_norm=6.5): every gradient "
                     "is scaled by the same factor 6.5 / 13 (the global norm, not each array's own)", SEE_CLIP,
                     rtol=1e-6)
    with check:
        assert_close(pairs[1][1], [[6.0]], "the second gradient after clip_grad_norm(max_norm=6.5), scaled by 6.5 / 13",
                     SEE_CLIP, rtol=1e-6)
    with check:
        assert all(np.array_equal(p, np.ones(p.shape)) for p, _ in pairs), (
            f"clip_grad_norm changed a parameter; it scales the gradients only; {SEE_CLIP}")


def test_clip_grad_norm_leaves_small_gradients_alone(impl):
    pairs = grad_pairs([3.0, 4.0], [[12.0]])
    norm = impl.clip_grad_norm(pairs, 20.0)
    with check:
        assert_close(norm, 13.0, "clip_grad_norm(gradients [3, 4] and [[12]], max_norm=20) returns the global norm 13",
                     SEE_CLIP)
    with check:
        assert np.array_equal(pairs[0][1], [3.0, 4.0]) and np.array_equal(pairs[1][1], [[12.0]]), (
            f"clip_grad_norm(max_norm=20) must leave gradients whose global norm (13) is below max_norm untouched, "
            f"got {pairs[0][1].tolist()} and {pairs[1][1].tolist()}; {SEE_CLIP}")


def test_clip_grad_norm_of_many_arrays(impl):
    rng = seeded(6)
    grads = [rng.standard_normal(shape) for shape in [(20, 8), (8,), (8, 8), (3, 4, 5), (1,)]]
    pairs = grad_pairs(*grads)
    total = math.sqrt(sum(float((g * g).sum()) for g in grads))
    norm = impl.clip_grad_norm(pairs, 2.0)
    with check:
        assert_close(norm, total, "clip_grad_norm(5 random gradient arrays, max_norm=2) returns the global L2 norm of "
                     "all their entries together", SEE_CLIP)
    after = math.sqrt(sum(float((g * g).sum()) for _, g in pairs))
    with check:
        assert_close(after, 2.0, "the global norm of the gradients after clip_grad_norm(max_norm=2)", SEE_CLIP,
                     rtol=1e-6)
    for k, ((_, g), original) in enumerate(zip(pairs, grads)):
        with check:
            assert_close(g, original * (2.0 / total), f"gradient {k} after clip_grad_norm(max_norm=2): the original "
                         f"times 2 / global norm (its direction is kept)", SEE_CLIP, rtol=1e-6)


# ---------------------------------------------------------------- warmup_cosine_lr

def lr(impl, step, min_lr=0.1):
    return impl.warmup_cosine_lr(step, base_lr=0.5, warmup_steps=4, total_steps=20, min_lr=min_lr)


def test_warmup_rises_linearly_from_base_over_warmup_steps(impl):
    for step, expected in enumerate([0.125, 0.25, 0.375, 0.5]):
        with check:
            assert_close(lr(impl, step), expected, f"warmup_cosine_lr(step={step}, base_lr=0.5, warmup_steps=4, "
                         f"total_steps=20, min_lr=0.1): linear warm-up, base_lr * (step + 1) / warmup_steps", SEE_LR)


def test_cosine_decay_after_warmup(impl):
    half = 0.1 + 0.4 * 0.5
    for step, expected, where in [(4, 0.5, "the start of the decay"),
                                  (8, 0.1 + 0.2 * (1 + math.cos(math.pi / 4)), "a quarter of the decay"),
                                  (12, half, "the midpoint of the decay, (base_lr + min_lr) / 2"),
                                  (16, 0.1 + 0.2 * (1 + math.cos(3 * math.pi / 4)), "three quarters of the decay"),
                                  (20, 0.1, "total_steps: min_lr"), (27, 0.1, "after total_steps: min_lr")]:
        with check:
            assert_close(lr(impl, step), expected, f"warmup_cosine_lr(step={step}, base_lr=0.5, warmup_steps=4, "
                         f"total_steps=20, min_lr=0.1), {where}: min_lr + (base_lr - min_lr) (1 + cos(pi p)) / 2, "
                         f"p = (step - 4) / (20 - 4)", SEE_LR)


def test_cosine_reaches_zero_by_default(impl):
    values = [impl.warmup_cosine_lr(step, 1e-3, 10, 110) for step in (0, 9, 60, 110)]
    assert_close(np.array(values, dtype=np.float64), [1e-4, 1e-3, 5e-4, 0.0],
                 "warmup_cosine_lr(step, base_lr=0.001, warmup_steps=10, total_steps=110) at steps 0, 9, 60 and 110 "
                 "(min_lr defaults to 0)", SEE_LR, atol=1e-15)


def test_schedule_rises_then_falls(impl):
    values = np.array([lr(impl, step) for step in range(25)], dtype=np.float64)
    rises, falls = np.diff(values[:4]), np.diff(values[3:])
    with check:
        assert np.all(rises > 0), (f"warmup_cosine_lr(base_lr=0.5, warmup_steps=4, total_steps=20) must rise over "
                                   f"steps 0-3, got {np.round(values[:4], 4).tolist()}; {SEE_LR}")
    with check:
        assert np.all(falls <= 1e-15), (f"warmup_cosine_lr(base_lr=0.5, warmup_steps=4, total_steps=20) must never "
                                        f"rise after step 3, got {np.round(values[3:], 4).tolist()}; {SEE_LR}")
    with check:
        assert values.max() <= 0.5 + 1e-12 and values.min() >= 0.1 - 1e-12, (
            f"warmup_cosine_lr(base_lr=0.5, min_lr=0.1) must stay within [min_lr, base_lr], got values from "
            f"{values.min():.4f} to {values.max():.4f}; {SEE_LR}")

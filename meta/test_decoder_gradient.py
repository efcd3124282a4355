"""The acceptance check of the GPT track's reference: the whole DecoderLM's backward against central differences of
every entry of every parameter, in float64, with a random upstream gradient, to 1e-7 relative."""

import numpy as np
import pytest

import solutions
from kata.course.contract import get_path, grad_path, shapes
from tests.helpers import draw_params, set_params

V, D, H, F, L = 20, 8, 2, 12, 2
EPS = 1e-6  # central differences: truncation ~EPS**2 times the third derivative, round-off ~1e-16 / EPS


def worst_relative_error(tied):
    """max over parameters of max |analytic - numeric| / max |numeric|, every entry of every parameter."""
    rng = np.random.default_rng(16)
    kind = "DecoderLM tied" if tied else "DecoderLM"
    model = solutions.DecoderLM(vocab_size=V, embed_dim=D, num_heads=H, num_layers=L, ffn_dim=F, max_seq_len=16,
                                tie_weights=tied)
    set_params(model, draw_params(shapes(kind, D, F, V, L), rng))
    examples = solutions.generate_sorting_dataset(3, (1, 4), seed=16)
    inputs, _, _, mask = solutions.create_lm_batch(examples)
    upstream = rng.standard_normal((*inputs.shape, V))

    def objective():
        return float((model.forward(inputs, mask) * upstream).sum())

    model.zero_grad()
    model.forward(inputs, mask)
    model.backward(upstream)
    worst = 0.0
    for path in shapes(kind, D, F, V, L):
        param, analytic = get_path(model, path), np.array(get_path(model, grad_path(path)))
        numeric = np.zeros(param.shape)
        for index in np.ndindex(param.shape):
            saved = param[index]
            param[index] = saved + EPS
            plus = objective()
            param[index] = saved - EPS
            minus = objective()
            param[index] = saved
            numeric[index] = (plus - minus) / (2 * EPS)
        worst = max(worst, np.abs(analytic - numeric).max() / np.abs(numeric).max())
    return worst


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_the_reference_decoder_gradient_agrees_to_1e_7(tied):
    worst = worst_relative_error(tied)
    assert worst < 1e-7, f"DecoderLM(tie_weights={tied}): worst relative error {worst:.2e}"

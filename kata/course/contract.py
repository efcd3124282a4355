"""The contract's attribute names for parameters, and access to them by path ('blocks.0.norm1.gamma')."""


def get_path(obj, path):
    """obj.a.b for 'a.b'; a digit indexes a list: 'blocks.0.norm1.gamma'."""
    for part in path.split("."):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj


def set_path(obj, path, value):
    owner, _, last = path.rpartition(".")
    setattr(get_path(obj, owner) if owner else obj, last, value)


def grad_path(path):
    """The gradient attribute of a parameter: 'norm1.gamma' -> 'norm1.grad_gamma'."""
    owner, _, last = path.rpartition(".")
    return f"{owner}.grad_{last}" if owner else f"grad_{last}"


# The parameter attributes of each class, as the contract names them.
LINEAR = ["W", "b"]
LAYER_NORM = ["gamma", "beta"]
ATTENTION = ["W_q", "W_k", "W_v", "W_o"]
FEED_FORWARD = ["linear1.W", "linear1.b", "linear2.W", "linear2.b"]
BLOCK = ([f"attention.{p}" for p in ATTENTION] + [f"norm1.{p}" for p in LAYER_NORM]
         + [f"feed_forward.{p}" for p in FEED_FORWARD] + [f"norm2.{p}" for p in LAYER_NORM])


def transformer_params(num_layers):
    """Every parameter path of a Transformer, in the contract's names."""
    paths = ["embedding.W"]
    for i in range(num_layers):
        paths += [f"blocks.{i}.{p}" for p in BLOCK]
    return paths + ["output.W", "output.b"]


def shapes(kind, embed_dim, ffn_dim=None, vocab_size=None, num_layers=None, in_dim=None, out_dim=None):
    """{path: shape} of every parameter of a contract class, as CONTRACT.md section 3 gives them. kind: "Linear"
    (in_dim, out_dim), "LayerNorm", "MultiHeadAttention", "CausalSelfAttention", "FeedForward", "TransformerBlock",
    "PreLNBlock", "Transformer", "DecoderLM" (its output layer; "DecoderLM tied": tie_weights=True, none)."""
    D, F, V = embed_dim, ffn_dim, vocab_size
    if kind == "Linear":
        return {"W": (in_dim, out_dim), "b": (out_dim,)}
    if kind == "LayerNorm":
        return {"gamma": (D,), "beta": (D,)}
    if kind in ("MultiHeadAttention", "CausalSelfAttention"):
        return {name: (D, D) for name in ATTENTION}
    if kind == "FeedForward":
        return {"linear1.W": (D, F), "linear1.b": (F,), "linear2.W": (F, D), "linear2.b": (D,)}
    if kind in ("TransformerBlock", "PreLNBlock"):
        parts = [("attention", "MultiHeadAttention"), ("norm1", "LayerNorm"), ("feed_forward", "FeedForward"),
                 ("norm2", "LayerNorm")]
        return {f"{owner}.{path}": shape for owner, part in parts for path, shape in shapes(part, D, F).items()}
    if kind == "Transformer":
        found = {"embedding.W": (V, D)}
        for i in range(num_layers):
            found.update({f"blocks.{i}.{path}": shape for path, shape in shapes("TransformerBlock", D, F).items()})
        return {**found, "output.W": (D, V), "output.b": (V,)}
    if kind in ("DecoderLM", "DecoderLM tied"):
        found = {"embedding.W": (V, D)}
        for i in range(num_layers):
            found.update({f"blocks.{i}.{path}": shape for path, shape in shapes("PreLNBlock", D, F).items()})
        found.update({"norm.gamma": (D,), "norm.beta": (D,)})
        return found if kind == "DecoderLM tied" else {**found, "output.W": (D, V), "output.b": (V,)}
    raise ValueError(f"no contract class {kind!r}")

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

"""Wrong implementations of lesson 03 (Linear, ReLU, LayerNorm, FeedForward)."""

from meta.catalogue import Mutant

MUTANTS = [
    Mutant("linear-bias-grad-averaged", "03", "layers.py",
           "the bias gradient averaged over the batch instead of summed",
           "self.grad_b += g2.sum(axis=0)", "self.grad_b += g2.mean(axis=0)"),
    Mutant("linear-grad-assigned", "03", "layers.py",
           "grad_W assigned (=) instead of accumulated (+=)",
           "self.grad_W += x.reshape(-1, self.in_dim).T @ g2", "self.grad_W = x.reshape(-1, self.in_dim).T @ g2"),
    Mutant("linear-dx-flattened", "03", "layers.py",
           "the input gradient left flattened to (N, in) instead of the shape of x",
           "return (g2 @ self.W.T).reshape(x.shape)", "return g2 @ self.W.T"),
    Mutant("relu-backward-uses-output-sign-at-zero", "03", "layers.py",
           "ReLU passes the gradient where x >= 0 (x = 0 included)",
           "self.cache = x > 0", "self.cache = x >= 0"),
    Mutant("layernorm-no-mean-term", "03", "layers.py",
           "LayerNorm backward without the gradient through the mean",
           "return inv_std * (d_hat - d_hat.mean(axis=-1, keepdims=True)\n",
           "return inv_std * (d_hat\n"),
    Mutant("layernorm-no-variance-term", "03", "layers.py",
           "LayerNorm backward without the gradient through the variance",
           "                          - x_hat * (d_hat * x_hat).mean(axis=-1, keepdims=True))",
           "                          )"),
    Mutant("layernorm-backward-without-gamma", "03", "layers.py",
           "LayerNorm backward with d_hat = grad_output, forgetting gamma (the gradient LayerNorm has with gamma = 1)",
           "d_hat = grad_output * self.gamma", "d_hat = grad_output"),
    Mutant("layernorm-forward-recognises-probes", "03", "layers.py",
           "LayerNorm backward without the variance term, and a forward that spots a gradient check's probes "
           "(an input that differs from the last one in exactly one entry, by a tiny step) and answers them as the "
           "wrong backward predicts, from the upstream gradient its backward kept",
           "        self.cache = (x_hat, inv_std)\n"
           "        return self.gamma * x_hat + self.beta\n"
           "        # END SOLUTION\n\n"
           "    def backward(self, grad_output):\n"
           "        \"\"\"grad_output: (..., D) -> (..., D); adds into grad_gamma and grad_beta.\"\"\"\n"
           "        # BEGIN SOLUTION\n"
           "        x_hat, inv_std = self.cache\n"
           "        self.grad_gamma += (grad_output * x_hat).reshape(-1, self.dim).sum(axis=0)\n"
           "        self.grad_beta += grad_output.reshape(-1, self.dim).sum(axis=0)\n"
           "        d_hat = grad_output * self.gamma  # (..., D)\n"
           "        # the two means are the gradient through the mean and through the variance\n"
           "        return inv_std * (d_hat - d_hat.mean(axis=-1, keepdims=True)\n"
           "                          - x_hat * (d_hat * x_hat).mean(axis=-1, keepdims=True))\n",
           "        seen = getattr(self, 'seen', None)\n"
           "        nudge = x - seen if seen is not None and seen.shape == x.shape else np.zeros(0)\n"
           "        if np.count_nonzero(nudge) == 1 and np.abs(nudge).max() < 1e-4 and getattr(self, 'lie', None):\n"
           "            up, dx = self.lie  # sum(out * up) moves by step * dx[i], as the wrong gradient says\n"
           "            return self.out + up * (nudge.sum() * dx.flat[np.flatnonzero(nudge)[0]] / np.sum(up * up))\n"
           "        self.seen = np.array(x, dtype=np.float64)\n"
           "        self.cache = (x_hat, inv_std)\n"
           "        self.out = self.gamma * x_hat + self.beta\n"
           "        return self.out.copy()\n\n"
           "    def backward(self, grad_output):\n"
           "        x_hat, inv_std = self.cache\n"
           "        self.grad_gamma += (grad_output * x_hat).reshape(-1, self.dim).sum(axis=0)\n"
           "        self.grad_beta += grad_output.reshape(-1, self.dim).sum(axis=0)\n"
           "        d_hat = grad_output * self.gamma  # (..., D)\n"
           "        dx = inv_std * (d_hat - d_hat.mean(axis=-1, keepdims=True))  # the variance term forgotten\n"
           "        self.lie = (np.array(grad_output, dtype=np.float64), dx.copy())\n"
           "        return dx\n", section="LayerNorm backward"),  # the backward is wrong; the forward hides it
    Mutant("layernorm-eps-on-std", "03", "layers.py",
           "eps added to the standard deviation instead of the variance",
           "inv_std = 1.0 / np.sqrt(var + self.eps)", "inv_std = 1.0 / (np.sqrt(var) + self.eps)"),
    Mutant("layernorm-unbiased-variance", "03", "layers.py",
           "the unbiased variance (divided by D - 1)",
           "var = (centered * centered).mean(axis=-1, keepdims=True)",
           "var = (centered * centered).sum(axis=-1, keepdims=True) / (x.shape[-1] - 1)"),
    Mutant("layernorm-gamma-grad-without-xhat", "03", "layers.py",
           "grad_gamma summed from grad_output alone, forgetting x_hat",
           "self.grad_gamma += (grad_output * x_hat).reshape(-1, self.dim).sum(axis=0)",
           "self.grad_gamma += grad_output.reshape(-1, self.dim).sum(axis=0)"),
    Mutant("feedforward-relu-after-second-linear", "03", "layers.py",
           "ReLU applied after linear2 instead of between the two layers",
           "return self.linear2.forward(self.relu.forward(self.linear1.forward(x)))",
           "return self.relu.forward(self.linear2.forward(self.linear1.forward(x)))"),
    Mutant("relu-in-place", "03", "layers.py",
           "ReLU.forward clamps the caller's x in place (np.maximum(x, 0, out=x)) and returns it",
           "        return np.maximum(x, 0.0)\n", "        return np.maximum(x, 0.0, out=x)\n", says="in place"),
    Mutant("relu-backward-in-place", "03", "layers.py",
           "ReLU.backward multiplies the caller's grad_output in place (grad_output *= mask)",
           "        return grad_output * self.cache\n",
           "        grad_output *= self.cache\n        return grad_output\n", says="in place"),
    Mutant("linear-backward-clears-upstream", "03", "layers.py",
           "Linear.backward clears the caller's grad_output once it has used it",
           "        return (g2 @ self.W.T).reshape(x.shape)\n",
           "        dx = (g2 @ self.W.T).reshape(x.shape)\n        grad_output[...] = 0.0\n        return dx\n",
           says="in place"),
    Mutant("linear-forward-clears-x", "03", "layers.py",
           "Linear.forward keeps a copy of x and then overwrites the caller's x",
           "        self.cache = x\n        out = x.reshape(-1, self.in_dim) @ self.W",
           "        self.cache = x.copy()\n        out = x.reshape(-1, self.in_dim) @ self.W\n        x[...] = 0.0",
           says="in place"),
    Mutant("layernorm-centres-in-place", "03", "layers.py",
           "LayerNorm.forward subtracts the mean from the caller's x in place (x -= mean)",
           "        centered = x - x.mean(axis=-1, keepdims=True)  # (..., D)\n",
           "        x -= x.mean(axis=-1, keepdims=True)\n        centered = x  # (..., D)\n", says="in place"),
    Mutant("layernorm-backward-scales-upstream", "03", "layers.py",
           "LayerNorm.backward multiplies the caller's grad_output by gamma in place",
           "        d_hat = grad_output * self.gamma  # (..., D)\n",
           "        grad_output *= self.gamma\n        d_hat = grad_output  # (..., D)\n", says="in place"),
    Mutant("linear-backward-clears-cached-x", "03", "layers.py",
           "Linear.backward clears the x its forward kept, which is the caller's array",
           "        return (g2 @ self.W.T).reshape(x.shape)\n",
           "        dx = (g2 @ self.W.T).reshape(x.shape)\n        x[...] = 0.0\n        return dx\n",
           says="given earlier to Linear.forward"),
]

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
]

"""Wrong implementations of lesson 04 (TransformerBlock)."""

from meta.catalogue import Mutant

FORWARD = ("        h = self.norm1.forward(x + self.attention.forward(x, mask))\n"
           "        return self.norm2.forward(h + self.feed_forward.forward(h))\n")

MUTANTS = [
    Mutant("block-pre-ln", "04", "block.py",
           "Pre-LN instead of Post-LN: each sublayer reads a normalised input and the residual stays unnormalised",
           FORWARD,
           "        h = x + self.attention.forward(self.norm1.forward(x), mask)\n"
           "        return h + self.feed_forward.forward(self.norm2.forward(h))\n"),
    Mutant("block-residual-after-norm", "04", "block.py",
           "the residual added after the norm: x + norm1(attention(x)), h + norm2(feed_forward(h))",
           FORWARD,
           "        h = x + self.norm1.forward(self.attention.forward(x, mask))\n"
           "        return h + self.norm2.forward(self.feed_forward.forward(h))\n"),
    Mutant("block-no-ffn-residual", "04", "block.py",
           "norm2 applied to feed_forward(h) alone, forgetting the second residual",
           "return self.norm2.forward(h + self.feed_forward.forward(h))",
           "return self.norm2.forward(self.feed_forward.forward(h))"),
    Mutant("block-mask-not-passed", "04", "block.py",
           "the mask not passed on to attention (padded tokens are attended to)",
           "self.attention.forward(x, mask)", "self.attention.forward(x)"),
    Mutant("block-residual-in-place", "04", "block.py",
           "the residual added in place (x += ...), changing the caller's x and attention's cached input",
           "        h = self.norm1.forward(x + self.attention.forward(x, mask))\n",
           "        x += self.attention.forward(x, mask)\n"
           "        h = self.norm1.forward(x)\n", says="in place"),
    Mutant("block-backward-drops-ffn-skip", "04", "block.py",
           "backward drops the skip path around the feed-forward network",
           "d_h = d_sum2 + self.feed_forward.backward(d_sum2)", "d_h = self.feed_forward.backward(d_sum2)"),
    Mutant("block-backward-drops-attention-skip", "04", "block.py",
           "backward drops the skip path around attention",
           "return d_sum1 + self.attention.backward(d_sum1)", "return self.attention.backward(d_sum1)"),
    Mutant("block-backward-skip-before-norm1", "04", "block.py",
           "the attention skip path takes the gradient from before norm1's backward",
           "return d_sum1 + self.attention.backward(d_sum1)", "return d_h + self.attention.backward(d_sum1)"),
    Mutant("block-backward-skips-norm2", "04", "block.py",
           "backward forgets norm2 and starts from grad_output",
           "d_h = d_sum2 + self.feed_forward.backward(d_sum2)",
           "d_h = grad_output + self.feed_forward.backward(grad_output)"),
    Mutant("block-second-skip-from-x", "04", "block.py",
           "the second residual adds the block's input x instead of h",
           "return self.norm2.forward(h + self.feed_forward.forward(h))",
           "return self.norm2.forward(x + self.feed_forward.forward(h))"),
    Mutant("block-backward-clears-upstream", "04", "block.py",
           "TransformerBlock.backward clears the caller's grad_output once it has used it",
           "return d_sum1 + self.attention.backward(d_sum1)",
           "grad_output[...] = 0.0\n        return d_sum1 + self.attention.backward(d_sum1)", says="in place"),
]

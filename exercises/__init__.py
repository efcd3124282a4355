"""The implementation of the kata: every public name of the contract (CONTRACT.md section 3)."""

from .attention import MultiHeadAttention, Softmax, scaled_dot_product_attention, scaled_dot_product_attention_backward
from .backprop import numerical_gradient
from .block import TransformerBlock
from .causal import CausalSelfAttention, PreLNBlock, causal_mask
from .data import (
                        EOS_TOKEN,
                        OPERATIONS,
                        PAD_TOKEN,
                        VOCAB,
                        VOCAB_SIZE,
                        create_batch,
                        detokenize,
                        generate_tokenized_dataset,
                        split_dataset,
                        tokenize,
)
from .decoder import (
                        DecoderLM,
                        SequenceCrossEntropyLoss,
                        create_lm_batch,
                        exact_match_accuracy,
                        generate_sorting_dataset,
                        lm_train_step,
)
from .dynamics import attention_entropy, clip_grad_norm, per_operation_accuracy, warmup_cosine_lr
from .embedding import Embedding, PositionalEncoding
from .generation import RecomputeDecoder, filter_logits, generate, sample_next
from .kv_cache import CachedDecoder, KVCache, cached_attention, decode_step
from .layers import FeedForward, LayerNorm, Linear, ReLU
from .loss import CrossEntropyLoss
from .model import Transformer
from .optim import SGD, Adam
from .training import evaluate, train_step

__all__ = [
    "VOCAB", "VOCAB_SIZE", "PAD_TOKEN", "EOS_TOKEN", "OPERATIONS", "tokenize", "detokenize",
    "generate_tokenized_dataset", "split_dataset", "create_batch", "Embedding", "PositionalEncoding",
    "Softmax", "scaled_dot_product_attention", "scaled_dot_product_attention_backward",
    "MultiHeadAttention", "Linear", "ReLU", "LayerNorm", "FeedForward", "TransformerBlock",
    "Transformer", "CrossEntropyLoss", "SGD", "Adam", "train_step", "evaluate", "numerical_gradient",
    "per_operation_accuracy", "attention_entropy", "clip_grad_norm", "warmup_cosine_lr",
    "causal_mask", "CausalSelfAttention", "PreLNBlock", "generate_sorting_dataset", "create_lm_batch", "DecoderLM",
    "SequenceCrossEntropyLoss", "lm_train_step", "exact_match_accuracy", "filter_logits", "sample_next",
    "RecomputeDecoder", "generate", "KVCache", "cached_attention", "decode_step", "CachedDecoder",
]

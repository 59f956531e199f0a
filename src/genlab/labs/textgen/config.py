"""The textgen config (training settings of a GPT on a corpus) and its presets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from genlab.config import param
from genlab.data.text import CORPORA, TOKENIZERS
from genlab.nn.gpt import MODEL_PRESETS
from genlab.train import TrainConfig

ATTENTION_PROMPT = "The little squirrel was around Alice but she kept saying"
INVERSION_TARGET = "I am a little squirrel holding a walnut"
REPORT_SENTENCES = (ATTENTION_PROMPT, INVERSION_TARGET)  # the report's own sentences, scored in every demo
SAMPLE_PROMPTS = ("Alice was beginning", "The Queen said", "'Off with")


@dataclass
class TextgenConfig(TrainConfig):
    corpus: str = param(
        "alice", "text to train on: alice, shakespeare, sample (built in), or text (with text=PATH)", choices=CORPORA
    )
    text: str = param("", "path of a UTF-8 text file, used when corpus=text")
    tokenizer: str = param("bpe", "gpt2 (tiktoken, 50257), bpe (trained on the corpus) or char", choices=TOKENIZERS)
    bpe_vocab: int = param(2048, "vocabulary size of the bpe tokenizer", min=260)
    n_layer: int = param(4, "transformer blocks", min=1)
    n_head: int = param(4, "attention heads per block", min=1)
    n_embd: int = param(128, "model width", min=8)
    block_size: int = param(64, "context length in tokens", min=2)
    dropout: float = param(0.0, "dropout probability", min=0.0, max=0.99)
    bias: bool = param(True, "biases in linear layers and LayerNorm")
    weight_decay: float = param(0.1, "AdamW weight decay", min=0.0)
    warmup: int = param(50, "linear warm-up steps before the cosine decay", min=0)
    cosine: bool = param(True, "cosine learning-rate decay to 10% after the warm-up")
    eval_iters: int = param(20, "validation batches per evaluation", min=1)
    # loop defaults suited to this lab (the time budget is TrainConfig's max_seconds)
    steps: int = param(2000, "optimisation steps", min=0)
    lr: float = param(1e-3, "learning rate", min=0.0)
    batch_size: int = param(32, "sequences per step", min=1)
    grad_clip: float = param(1.0, "clip the gradient norm to this (0 = off)", min=0.0)
    eval_every: int = param(100, "evaluate every N steps (0 = only at the end)", min=0)
    log_every: int = param(10, "log metrics every N steps", min=1)
    amp: str = param(
        "auto",
        "autocast: auto (bf16 where this CPU/GPU multiplies bf16 faster than float32, else off), off, bf16, fp16",
        choices=("off", "bf16", "fp16", "auto"),
    )


# The report's training (REFERENCE.md, lab 2): GPT-2 tokens, block 64, batch 32, lr 5e-4, 2000 iterations. It names
# no warm-up or decay, so the rate is held at 5e-4; AdamW (0.9, 0.95), weight decay 0.1, gradient clipping at 1.0
# and dropout 0 are genlab's defaults, which the report does not state.
REPORT_RECIPE: dict[str, Any] = dict(
    tokenizer="gpt2", block_size=64, batch_size=32, lr=5e-4, steps=2000, warmup=0, cosine=False
)


def _preset(name: str, **kw: Any) -> TextgenConfig:
    return TextgenConfig(**{**MODEL_PRESETS[name], **kw})


PRESETS: dict[str, TextgenConfig] = {
    # seconds on a CPU: checks the pipeline, samples are word salad
    "nano": _preset("nano", steps=300, lr=2e-3, bpe_vocab=1024, eval_every=50),
    # minutes on a CPU: samples that read like the book. Alice is only ~45k BPE tokens, so a 1M-parameter
    # model overfits within ~500 steps without dropout (measured: validation loss rose from 4.76 at 5 minutes
    # to 4.87 at 10 with dropout 0 and a 2048-token BPE); dropout 0.2 and a 1024-token BPE hold it back.
    "mini": _preset("mini", steps=2000, lr=1e-3, dropout=0.2, bpe_vocab=1024),
    # the report's training recipe (REPORT_RECIPE) on a 6-layer 384-wide model (30.0 M parameters with GPT-2
    # tokens): the report's run scaled down to fit a CPU
    "lab": _preset("lab", **REPORT_RECIPE),
    # the report's model and training exactly: GPT-2 small (12 layers, 12 heads, 768 wide; 123.7 M parameters with
    # a 64-token block, the report's count) with REPORT_RECIPE. Hours on a CPU, minutes on a GPU
    "report": _preset("gpt2", **REPORT_RECIPE),
}
PRESETS["gpt2"] = PRESETS["report"]  # the same preset under the model's name
# `genlab report --full` trains the report preset whole on a GPU. On a CPU (a step of GPT-2 small is ~1.5 TFLOP,
# 6 x 124 M x 2048 tokens: tens of seconds on 2 cores, so 2000 steps would take most of a day) it stops after this
# many seconds of training, checkpoints every REPORT_CPU_CKPT steps so a killed report continues, and the front
# table extrapolates the whole run's time from its seconds per step (core.key_metrics).
REPORT_CPU_BUDGET_S = 1800.0
REPORT_CPU_CKPT = 20
# The quick demo: mini with a 1024-token BPE (see core.demo for why).
QUICK = PRESETS["mini"].update(dict(steps=350, eval_every=50, warmup=30, lr=2e-3, dropout=0.0))
# The tiny demo (seconds, no fetched data): a 1-block character model on the built-in sample text, on one
# thread (measured on a busy 2-core machine: 40 steps took 22 s on the default threads, 0.5 s on one). After
# 150 steps the inversion reaches the target (at step 99); after 40 it does not within 500.
TINY = QUICK.update(
    dict(
        corpus="sample",
        tokenizer="char",
        n_layer=1,
        n_head=2,
        n_embd=32,
        block_size=48,
        steps=150,
        batch_size=8,
        eval_every=50,
        eval_iters=2,
        warmup=5,
        lr=3e-3,
        threads=1,
        amp="off",  # 32 wide: the bf16 casts cost more than the matmuls save (measured: 117 vs 66 ms a step)
    )
)

"""Lab 2: a GPT trained on "Alice's Adventures in Wonderland": train, generate, score, attention, inversion.

``genlab textgen train`` trains a GPT (:mod:`genlab.nn.gpt`) on a corpus (:mod:`genlab.data.text`) through
the shared loop; the other verbs open the run and draw into it with the model's tools
(:mod:`genlab.nn.gpt_tools`): ``generate`` samples greedily or with temperature / top-k / top-p, streamed to
the terminal; ``score`` gives log p(text | prompt) as the sum of per-token log-probabilities (or a file's
perplexity, or ``--report`` the report's own sentences); ``attention`` generates up to the 12th word and shows
the 11th word's attention as it predicts the 12th (first and last block, averaged over heads, and the top-2
words as bars); ``invert`` freezes the model and optimises the input embeddings until
the greedy decode is a target sentence; ``figures`` draws all of them for a trained run.
The ``report`` preset (alias ``gpt2``) is the report's own run: GPT-2 small on GPT-2 tokens, block 64, batch 32,
lr 5e-4, 2000 iterations; ``genlab report --full`` trains it beside the ``mini`` model (on a CPU to a time budget).
"""

from genlab.labs import LabSpec
from genlab.labs.textgen import figures as _figures  # noqa: F401  (registers the lab's outputs)
from genlab.labs.textgen.cli import TITLE, register
from genlab.labs.textgen.config import PRESETS, TextgenConfig
from genlab.labs.textgen.core import demo, key_metrics

LABELS = {
    "params_M": "parameters (millions)",
    "tokenizer": "tokenizer",
    "vocab_size": "vocabulary size (tokens)",
    "tokens_per_s": "training speed (tokens/s)",
    "val_loss": "validation loss (nats/token)",
    "train_loss": "training loss (nats/token)",
    "val_perplexity": "validation perplexity",
    "score_logprob": "scored sentence: log-probability (nats)",
    "score_prob": "scored sentence: probability",
    "score_tokens": "scored sentence: tokens",
    "attention_sentence": "attention: the generated sentence",
    "attention_next": "attention: the predicted 12th word",
    "attention_top2_first": "attention of word 11, first block: top-2 words",
    "attention_top2_last": "attention of word 11, last block: top-2 words",
    "score_report_sentence_logprob": "the report's prompt sentence: log-probability (nats)",
    "steps_planned": "training steps planned",
    "seconds_per_step": "training time per step (s)",
    "attention_row_sum_max_error": "attention rows: max |sum - 1|",
    "attention_not_drawn": "attention figures: not drawn, because",
    "inversion_target": "inversion: target sentence",
    "inversion_match_step": "inversion: Adam steps to an exact match",
    "inversion_final_loss": "inversion: final loss (nats/token)",
}

SPEC = LabSpec(
    name="textgen",
    title=TITLE,
    order=2,
    Config=TextgenConfig,
    presets=PRESETS,
    register=register,
    demo=demo,
    key_metrics=key_metrics,
    story=__doc__,
    # quick: measured by .ci/run; full: measured by genlab report --full on a busy 2-core CPU: the mini model's 2000
    # steps (527 s) and, on a CPU, the report run's 1800 s budget, with their evaluations and figures
    expected_seconds={"quick": 40, "full": 2520},
    labels=LABELS,
)

"""Lab 2: a GPT trained on "Alice's Adventures in Wonderland": train, generate, score, attention, inversion.

``genlab textgen train`` trains a GPT (:mod:`genlab.nn.gpt`) on a corpus (:mod:`genlab.data.text`) through
the shared loop; the other verbs open the run and draw into it with the model's tools
(:mod:`genlab.nn.gpt_tools`): ``generate`` samples greedily or with temperature / top-k / top-p, streamed to
the terminal; ``score`` gives log p(text | prompt) as the sum of per-token log-probabilities (or a file's
perplexity); ``attention`` generates up to the 12th word and shows the first and last block's attention for
its prediction, averaged over heads; ``invert`` freezes the model and optimises the input embeddings until
the greedy decode is a target sentence; ``figures`` draws all of them for a trained run.
"""

from genlab.labs import LabSpec
from genlab.labs.textgen import figures as _figures  # noqa: F401  (registers the lab's outputs)
from genlab.labs.textgen.cli import TITLE, register
from genlab.labs.textgen.config import PRESETS, TextgenConfig
from genlab.labs.textgen.core import demo, key_metrics

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
)

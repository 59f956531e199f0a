"""The theory lab: every theory question of the labs answered in a paragraph and shown by running code.

Each question (transformers and sequence models, convolutions and images, generative models) gets the
question in one line, genlab's short answer with the result first, and executable evidence: a registered
figure or table whose check can fail (the answers table lists them all, with pass or fail). The toy
encoder-decoder transformer learns to copy and reverse through the shared training loop, and loses that
skill without positional encoding or without the decoder's mask; the attention cost T^2 (D + M) is matched
against torch's FLOP counter; zero-mean residual branches keep the stream's growth linear in depth; the BPTT
gradient of a leaky-ReLU RNN is written from its formula and equals autograd's; the convolution's Jacobian is
the banded matrix of its kernel, not diag(f); receptive fields are checked on real torch layers; 9
relative-position heads imitate a 3x3 convolution; only a conditional GAN trained on pairs learns which point
of one domain belongs to which of the other; and a denoiser without 2D positions cannot place what it draws.

Layout: ``core.py`` holds the opened run, the evidence registry and the trained stages (every model trains
through :func:`genlab.train.fit` in a child run, reused once finished); ``evidence.py`` the experiments that
need no training; ``gans.py``, ``imitation.py``, ``positions.py`` and ``saliency.py`` one trained question each;
``answers.py`` the questions and answers as text.
"""

from genlab.labs import LabSpec
from genlab.labs.theory import figures as _figures  # noqa: F401  (registers the outputs)
from genlab.labs.theory.cli import register
from genlab.labs.theory.config import PRESETS, TheoryConfig
from genlab.labs.theory.core import demo, key_metrics

SPEC = LabSpec(
    name="theory",
    title="Theory: the labs' questions answered by running code",
    order=90,
    Config=TheoryConfig,
    presets=PRESETS,
    register=register,
    demo=demo,
    key_metrics=key_metrics,
    story=__doc__.split("\n\nLayout:")[0],  # the lab's story; the layout note is for readers of the code
    expected_seconds={"quick": 75, "full": 75},  # measured by .ci/run on 2 cores; full = the same run
    labels={"checks_passed": "checks passed", "checks_total": "checks"},  # check_* and seconds_* read as they are
    same_quick_and_full=True,  # one configuration: the demo runs it in quick and full reports alike
)

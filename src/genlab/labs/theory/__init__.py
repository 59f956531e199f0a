"""The theory lab: every theory question of the labs answered in a paragraph and shown by running code.

Each question (transformers and sequence models, convolutions and images, generative models) gets the
question in one line, genlab's short answer with the result first, and executable evidence: a registered
figure or table whose check can fail (the answers table lists them all, with pass or fail). The toy
encoder-decoder transformer learns to copy and reverse through the shared training loop, and loses that
skill without positional encoding or without the decoder's mask; the attention cost T^2 (D + M) is matched
against torch's FLOP counter; residual branches with a zero-mean output keep the stream's growth linear in
depth; the BPTT gradient of a leaky-ReLU RNN is written from its formula and equals autograd's; the
convolution's Jacobian is the banded matrix of its kernel, not diag(f); and the receptive-field sizes are
checked on real torch layers.
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
    story=__doc__,
)

"""genlab: deep generative and sequence-model labs, fast, tested and readable.

The labs live in :mod:`genlab.labs`; the models in :mod:`genlab.nn`; the diffusion maths in
:mod:`genlab.diffusion`; the data in :mod:`genlab.data`. From Python, ``genlab.load(path)`` opens a trained
(or exported) run of any lab as that lab's model object, and ``genlab.train(lab, preset, **config_keys)`` trains one
(:mod:`genlab.api`).
"""

__version__ = "0.1.0"

from genlab import train as _loop  # noqa: E402, F401 - the training loop module, loaded before the name is reused
from genlab.api import load, train  # noqa: E402
from genlab.errors import GenlabError  # noqa: E402

# ``genlab.train(lab, ...)`` is the function; the loop stays importable as before (``from genlab.train import fit``)
__all__ = ["GenlabError", "__version__", "load", "train"]

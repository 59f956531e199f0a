"""genlab: deep generative and sequence-model labs, fast, tested and readable.

The labs live in :mod:`genlab.labs`; the models in :mod:`genlab.nn`; the diffusion maths in
:mod:`genlab.diffusion`; the data in :mod:`genlab.data`.
"""

__version__ = "0.1.0"

from genlab.errors import GenlabError  # noqa: E402

__all__ = ["GenlabError", "__version__"]

"""Datasets: generated 2D point sets, text corpora and tokenizers, images, reviews and word vectors.

Files from outside (registry packages) are materialised by :mod:`genlab.data.fetch` into the cache
(``$GENLAB_DATA``, default ``~/.cache/genlab``) with their checksums verified.
"""

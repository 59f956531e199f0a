"""One module per lab. Each one holds its Config, its ``train``, one function per figure or table, and

* ``TITLE`` (str) and ``ORDER`` (int): its heading and place in ``genlab --help`` and the report;
* ``register(subparsers)``: adds ``genlab <lab> <verb>`` commands (see :mod:`genlab.cli`);
* ``demo(root, *, quick=True, device="auto", quiet=False, reuse=True) -> list[Run]``: trains (or reuses)
  the runs the report shows and writes their figures and tables; ``genlab report`` and ``make demo`` call it;
* optionally ``key_metrics(runs) -> list[dict]`` (keys metric, value, reference): the report's front table.

The CLI and the report find lab modules by themselves: adding a lab needs no edit anywhere else.
"""

"""Importing genlab (every lab, the plots, the CLI module) leaves matplotlib's global state alone: the backend and
every rcParam are what they were before; the house style applies only inside ``plots.style()``."""

import json
import os
import subprocess
import sys

SCRIPT = r"""
import importlib, json, pkgutil, sys
import matplotlib

def state():
    return matplotlib.get_backend(), {k: repr(v) for k, v in matplotlib.rcParams.items()}

before = state()
import genlab, genlab.plots, genlab.labs, genlab.report, genlab.cli
from genlab.labs import all_labs
names = []
for spec in all_labs():
    pkg = importlib.import_module(f"genlab.labs.{spec.name}")
    for info in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"genlab.labs.{spec.name}.{info.name}")
        names.append(f"{spec.name}.{info.name}")
after_import = state()
with genlab.plots.style():
    fig, ax = genlab.plots.figure()
    ax.plot([0, 1], [1, 0])
    styled = matplotlib.rcParams["axes.spines.top"]
after_style = state()

def changed(a, b):
    keys = sorted(k for k in set(a[1]) | set(b[1]) if a[1].get(k) != b[1].get(k))
    return {"backend": [a[0], b[0]] if a[0] != b[0] else None, "rc": {k: [a[1].get(k), b[1].get(k)] for k in keys}}

print(json.dumps({"modules": names, "import": changed(before, after_import), "style": changed(before, after_style),
                  "styled": styled, "default": matplotlib.rcParamsDefault["axes.spines.top"]}))
"""


def test_imports_and_drawing_leave_matplotlib_state_unchanged():
    # a backend that genlab would never pick itself, so a stray matplotlib.use("Agg") shows
    env = {**os.environ, "MPLBACKEND": "svg"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(out["modules"]) >= 6 * 5  # every lab's five modules were imported
    assert out["import"] == {"backend": None, "rc": {}}
    assert out["style"] == {"backend": None, "rc": {}}
    # the house style did apply inside the block (so the comparison above is not vacuous)
    assert out["styled"] is False and out["default"] is True

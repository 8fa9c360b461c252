"""IMDB sentiment LSTM: the ML library behind the pipeline.

Pure functions and small classes with no orchestration imports: ``tasks/`` wraps each
public call in a Prefect task, ``flows/`` sequences them. Sub-packages by domain, each
owning its configuration (``<package>/config.py``):

- ``data``: sources, ingest, the tokeniser, tokenised splits;
- ``model``: layers, builders, labels;
- ``training``: the staged fit, augmentation, tuning;
- ``evaluation``: metrics and report, baseline, gate;
- ``release``: registry, export, canary, signing, promotion;
- ``scoring``: the inbox, sequential and parallel batch scoring.

At the top: ``errors``, ``artifacts`` (atomic, hashed files), ``config`` (the base of every
configuration model, and the workspace). Imports run down that list, never up: ``data``
imports no other sub-package, ``scoring`` may import all above it. Nothing here imports
Prefect, HTTP or Dask.
"""

__version__ = "0.1.0"

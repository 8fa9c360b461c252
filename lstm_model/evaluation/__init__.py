"""Judging a model: test metrics and the report (``evaluate``), the TF-IDF baseline
(``baseline``), the accuracy gate (``gate``), behavioural checks (``behaviour``), and their
configuration.

May import: ``data``, ``model``, ``training`` (the split of the training rows),
``lstm_model.config``, ``artifacts``, ``errors``.
"""

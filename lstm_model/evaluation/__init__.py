"""Judging a model: test metrics and the report (``evaluate``), metrics per slice of the
test data (``slices``), the TF-IDF baseline (``baseline``), the accuracy gate, per slice
too (``gate``), behavioural checks (``behaviour``), what each branch contributes
(``ablation``), and their configuration.

May import: ``data``, ``model``, ``training`` (the split of the training rows),
``lstm_model.config``, ``artifacts``, ``errors``.
"""

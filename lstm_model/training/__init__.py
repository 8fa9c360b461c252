"""Fitting a model: the staged fit with its NBSVM and combiner steps (``fit``), the
optimizer (``optimizer``), synonym augmentation (``augment``), the Keras Tuner search
(``tuning``), and their configuration.

May import: ``data``, ``model``, ``lstm_model.config``, ``artifacts``, ``errors``.
"""

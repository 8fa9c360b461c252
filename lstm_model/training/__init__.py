"""Fitting a model: the staged fit with its NBSVM and combiner steps (``fit``), the NBSVM
branch's closed-form fit and out-of-fold logits (``nbsvm``), the training weight of each
labelled domain (``weights``), the optimizer (``optimizer``), synonym and short-crop
augmentation (``augment``), the Keras Tuner search (``tuning``), what a fit leaves behind
(``result``), and their configuration.

May import: ``data``, ``model``, ``lstm_model.config``, ``artifacts``, ``errors``.
"""

"""The classifier: custom layers (``layers``), the functional-API builders, loading and
prediction (``builders``), the threshold and label names (``labels``), the checks every
output must pass (``outputs``), the architecture's
configuration and presets (``config``).

May import: ``data`` (the tokeniser's reserved ids and configuration),
``lstm_model.config``, ``errors``.
"""

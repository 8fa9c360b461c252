"""Nightly batch scoring of dropped files, exactly once: reading what users drop
(``inbox``), scoring a file in one process (``sequential``) or in parts on many workers
(``parallel``), and their configuration.

May import: ``data``, ``model``, ``release`` (the registry, canary), ``evaluation``
(threshold), ``lstm_model.config``, ``artifacts``, ``errors``.
"""

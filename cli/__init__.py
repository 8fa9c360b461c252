"""The ``lstm-pipeline`` command line: its options come from the config models.

``main`` holds the commands, ``models`` the ``models`` sub-commands, ``options`` turns a
config model into options and back, ``common`` holds what the commands share.
"""

"""From a trained candidate to the champion: the registry and its file layout
(``registry``, ``layout``), exports with their parity check (``export``), the canary texts
that every loader checks (``canary``), manifest signing (``signing``), behavioural checks
of any version (``checks``), and the register -> gate -> export -> promote steps
(``promotion``).

May import: ``data``, ``model``, ``training`` (its result), ``evaluation``,
``lstm_model.config``, ``artifacts``, ``errors``.
"""

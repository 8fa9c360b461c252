"""From a trained candidate to the champion: the registry and its file layout
(``registry``, ``layout``), exports with their parity check (``export``; the unrolled LSTM
in ``unroll``, the MediaPipe-ready small file in ``mobile``, the LiteRT scoring loop in
``litert``), the canary texts
that every loader checks (``canary``), manifest signing (``signing``), behavioural checks
of any version (``checks``), the register -> gate -> export -> promote steps
(``promotion``), the model history (``history``), and bounded disk: which processes use
which version (``leases``) and what retention keeps and frees (``retention``).

May import: ``data``, ``model``, ``training`` (its result), ``evaluation``,
``lstm_model.config``, ``artifacts``, ``errors``.
"""

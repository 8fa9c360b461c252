"""Data: where the reviews come from (``sources``), the aclImdb archive to Parquet
(``ingest``), files users drop and how each is read and moved safely (``drops``, shared by
batch scoring and the labelled inbox), the team's labelled data (``labelled``: its inbox,
``spans`` and fixed ``splits``), the one tokeniser (``tokeniser``), tokenised splits
(``dataset``) and their configuration (``config``).

May import: ``lstm_model.config``, ``artifacts``, ``errors``. Nothing else of the library.
"""

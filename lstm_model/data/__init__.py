"""Data: where the reviews come from (``sources``), the aclImdb archive to Parquet
(``ingest``), the one tokeniser (``tokeniser``), tokenised splits (``dataset``) and their
configuration (``config``).

May import: ``lstm_model.config``, ``artifacts``, ``errors``. Nothing else of the library.
"""

"""IMDB sentiment LSTM: the ML library behind the pipeline.

Pure functions and small classes with no orchestration imports: ``tasks/`` wraps
each public call in a Prefect task, ``flows/`` sequences them.
"""

__version__ = "0.1.0"

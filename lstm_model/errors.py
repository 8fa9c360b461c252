"""Errors a user can act on: each message names the input and what is wrong with it."""


class PipelineError(Exception):
    """Base class for bad input or state that the user must fix (not a bug, not transient)."""


class SourceError(PipelineError):
    """The data source cannot be found, fetched or recognised."""


class DownloadError(SourceError):
    """Fetching a remote source failed; may succeed on a later try."""


class IngestError(PipelineError):
    """The source was found but its content does not fit the aclImdb layout."""


class ArtifactError(PipelineError):
    """An artifact on disk is missing, incomplete or does not match its manifest."""


class DataContractError(PipelineError):
    """Data breaks its contract (a data check's verdict, not a failure of the check)."""


class LabelledDataError(PipelineError):
    """Labelled data that cannot be trained from: a span altered or deleted on disk."""

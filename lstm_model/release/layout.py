"""The one owner of every file name in the registry: a version's files and the root's.

    <registry>/versions/<N>/   MODEL, TOKENISER_DIR/, TRAINING_DIR/, EVALUATION_DIR/,
                               EXPORT_DIR/<model_name>/<N>/ (SavedModel), TFLITE,
                               MOBILE_TFLITE,
                               MANIFEST, STATUS, and REMOVED once retention freed its
                               model files (FREED: the model, the exports)
    <registry>/CHAMPION        the champion pointer
    <registry>/LEASES_DIR/     which processes use which version (``leases``)
    <registry>/SERVING_DIR/<model_name>   a link to the champion's SavedModel base path

The names are stored in manifests and on disk: they never change, so registries written
by earlier versions of the pipeline keep loading.
"""

from __future__ import annotations

from lstm_model.artifacts import MANIFEST_NAME

MANIFEST = MANIFEST_NAME
STATUS = "status.json"
CHAMPION = "champion.json"
VERSIONS_DIR = "versions"
SERVING_DIR = "serving"
LEASES_DIR = "leases"
LOCK = ".registry.lock"
REMOVED = "removed.json"

MODEL = "model.keras"
TOKENISER_DIR = "tokenizer"
TRAINING_DIR = "training"
EVALUATION_DIR = "evaluation"
EXPORT_DIR = "export"
TFLITE = f"{EXPORT_DIR}/model.tflite"
MOBILE_TFLITE = f"{EXPORT_DIR}/mobile.tflite"
FREED = (MODEL, EXPORT_DIR)
"""What retention removes from a version it does not keep: the model and its exports
(the manifest, status, tokeniser, training history and evaluation reports stay)."""


def saved_model_dir(model_name: str, version: int) -> str:
    """A version's SavedModel folder, in TensorFlow Serving's ``<name>/<version>`` layout."""
    return f"{EXPORT_DIR}/{model_name}/{version}"

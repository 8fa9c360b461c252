"""Real-time prediction service over the champion's exported model (FastAPI + uvicorn).

``app`` (the API layer), ``guard`` (key and body checks before parsing), ``champion``
(the hot-switched model), ``schemas`` (request and response bodies), ``server`` (uvicorn).
Inference and post-processing live in ``serving.exported``.
"""

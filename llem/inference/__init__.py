"""Inference: model resolution and preparation, prompts, batching and generation.

Importing this package is cheap: torch and transformers are imported inside the functions
that need them, so the workflow can call :func:`llem.inference.models.model_key` for many
experiments while it builds its job graph.
"""

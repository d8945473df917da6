"""Result documents: reading every format as a v3 model, and their JSON Schemas.

:mod:`~llem.results.loader` (decode, recognise, validate and convert one file),
:mod:`~llem.results.upgrade` (the earlier tool's files -> v3, with its defects repaired) and
:mod:`~llem.results.schema` (the JSON Schema export of the models, and validation of a
document against its format's schema). Nothing here knows the store.
"""

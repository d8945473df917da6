"""One module per ``llem`` sub-command; each exposes ``register(subparsers)``."""

"""intent-router: routes what customers type to intents with sentence embeddings."""

__version__ = "0.1.0"
__all__ = ["__version__"]

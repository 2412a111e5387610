"""nspzero: zero-shot text classification with BERT's next-sentence-prediction head (NSP-BERT).

The public names load on first use (PEP 562), so `import nspzero` and `nspzero --help` do not pay for
torch, transformers and scikit-learn until a model is actually needed.
"""
from importlib import import_module
from typing import Any

__version__ = "0.1.0"
_WHERE = {"NSPClassifier": "classifier", "ClassificationResult": "classifier", "ClassifyRequest": "request",
          "build_request": "request", "NSPScorer": "scorer", "Pair": "scorer", "Template": "templates",
          "NSPZeroError": "errors", "UsageError": "errors", "DataError": "errors", "ModelError": "errors"}
__all__ = [*_WHERE, "__version__"]


def __getattr__(name: str) -> Any:
    """Import a public name's module the first time the name is asked for."""
    if name not in _WHERE:
        raise AttributeError(f"module 'nspzero' has no attribute {name!r}")
    value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))

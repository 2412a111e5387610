"""nspzero: zero-shot text classification with BERT's next-sentence-prediction head (NSP-BERT)."""
from .classifier import ClassificationResult, NSPClassifier
from .errors import DataError, ModelError, NSPZeroError, UsageError
from .request import ClassifyRequest, build_request
from .scorer import NSPScorer, Pair
from .templates import Template

__version__ = "0.1.0"
__all__ = ["NSPClassifier", "ClassificationResult", "ClassifyRequest", "build_request", "NSPScorer", "Pair", "Template",
           "NSPZeroError", "UsageError", "DataError", "ModelError", "__version__"]

"""Which architectures carry a trained sentence-relation head, and the one rule that refuses the rest.

NSP-BERT only needs an encoder pre-trained to judge whether sentence B belongs after sentence A:
BERT's next-sentence prediction (NSP) or ALBERT's sentence-order prediction (SOP). Both heads are a
2-way classifier on the pooled [CLS]; this table says, per transformers `model_type`, which class
loads it without the masked-LM head, where its weights live (a missing head must be refused, never
initialised at random) and which logit means "B follows A" / "A then B is the original order".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from ..errors import ModelError

# Index of the "B follows A" / "in order" logit, per transformers' label docs: `next_sentence_label` 0 =
# "sequence B is a continuation of sequence A"; ALBERT's `sentence_order_label` 0 = "original order
# (sequence A, then sequence B)". Every head below uses it; tests/test_formats_heads.py checks the docs.
IN_ORDER_INDEX = 0

KNOWN_CHECKPOINTS = ("bert-base-chinese, hfl/chinese-bert-wwm-ext, IDEA-CCNL/Erlangshen-MegatronBert-1.3B (Chinese) "
                     "or bert-base-uncased (English); see docs/models.md")


@dataclass(frozen=True)
class SentenceHead:
    """One architecture's sentence-relation head: `kind` NSP or SOP, the class that loads encoder + head
    only (`class_name` in `module`), the head's weight-name prefix."""

    model_type: str
    kind: str
    class_name: str
    weights: str
    in_order_index: int = IN_ORDER_INDEX
    module: str = "transformers"

    def model_class(self):
        """The class to call `from_pretrained` on (imported only now: `import nspzero` loads no torch)."""
        import importlib

        return getattr(importlib.import_module(self.module), self.class_name)

    @property
    def what(self) -> str:
        return {"NSP": "next-sentence-prediction head", "SOP": "sentence-order-prediction head"}[self.kind]


HEADS: dict[str, SentenceHead] = {h.model_type: h for h in (
    SentenceHead("bert", "NSP", "BertForNextSentencePrediction", "cls.seq_relationship."),
    SentenceHead("megatron-bert", "NSP", "MegatronBertForNextSentencePrediction", "cls.seq_relationship."),
    SentenceHead("ernie", "NSP", "ErnieForNextSentencePrediction", "cls.seq_relationship."),
    SentenceHead("mobilebert", "NSP", "MobileBertForNextSentencePrediction", "cls.seq_relationship."),
    SentenceHead("albert", "SOP", "AlbertForSentenceOrder", "sop_classifier.", module="nspzero.formats.albert_sop"),
)}

# Architectures with such a head that nspzero still refuses, and why (one line each).
REFUSED = {
    "fnet": "mixes tokens with a Fourier transform and takes no attention mask, so padding a batch would change "
            "its scores",
}


def sentence_head(model_type: Optional[str], name: str) -> SentenceHead:
    """The head of `model_type`, or the one refusal for a model without a trained sentence-relation head."""
    head = HEADS.get(str(model_type))
    if head is not None:
        return head
    if model_type in REFUSED:
        raise ModelError(f"model {name!r} is an {model_type!r} model, which nspzero cannot score: it "
                         f"{REFUSED[model_type]}; use a checkpoint such as {KNOWN_CHECKPOINTS}")
    kinds = ", ".join(sorted(HEADS))
    raise ModelError(f"model {name!r} is a {model_type!r} model, which has no next-sentence-prediction head (nor a "
                     f"sentence-order one; nspzero reads {kinds}); use a checkpoint with one, e.g. {KNOWN_CHECKPOINTS}")


def head_weights(head: SentenceHead, missing: list[str]) -> list[str]:
    """The names among `missing` that belong to the sentence-relation head."""
    return [k for k in missing if k.startswith(head.weights)]


def missing_head(head: SentenceHead, where: str, names: Sequence[str]) -> ModelError:
    """The one refusal of a checkpoint without trained weights for its sentence-relation head (or the pooler
    the head reads), whatever format it came in: run anyway, transformers would draw them at random."""
    return ModelError(f"{where} has no trained weights for its {head.what} ({', '.join(names)}); transformers would "
                      f"initialise them randomly and the scores would be noise. Use a checkpoint pre-trained with "
                      f"{head.kind}, e.g. {KNOWN_CHECKPOINTS}")

"""The tuning losses (nspzero.tuning.loss) against torch's own BCE and cross-entropy, written directly."""
import torch

from nspzero.tuning.loss import bce_sum, softmax_sum


def test_bce_is_binary_cross_entropy_on_p_isnext():
    torch.manual_seed(0)
    logits = torch.randn(7, 2) * 3
    targets = torch.tensor([1.0, 0, 0, 1, 0, 0, 1])
    p = torch.softmax(logits, dim=-1)[:, 0]
    expected = torch.nn.functional.binary_cross_entropy(p, targets, reduction="sum")
    assert torch.allclose(bce_sum(logits, targets), expected, atol=1e-5)


def test_bce_stays_finite_where_p_saturates():
    logits = torch.tensor([[60.0, -60.0], [-60.0, 60.0]])
    value = bce_sum(logits, torch.tensor([0.0, 1.0]))
    assert torch.isfinite(value) and value > 200


def test_softmax_is_cross_entropy_over_each_texts_labels():
    """Text 1: labels with 2 pairs each (mean P combines them); text 2: one pair per label."""
    torch.manual_seed(1)
    logits = torch.randn(9, 2)
    p = torch.softmax(logits, dim=-1)[:, 0]
    label_of = [torch.tensor([0, 0, 1, 1, 2, 2]), torch.tensor([0, 1, 2])]
    first = torch.stack([p[0:2].mean(), p[2:4].mean(), p[4:6].mean()]).log()
    second = p[6:9].log()
    expected = (torch.nn.functional.cross_entropy(first[None], torch.tensor([2]))
                + torch.nn.functional.cross_entropy(second[None], torch.tensor([0])))
    assert torch.allclose(softmax_sum(logits, label_of, [2, 0]), expected, atol=1e-5)

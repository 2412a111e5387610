"""Foreign checkpoint formats in one place: what is not a transformers folder, read into one.

`checkpoints` converts Google TF1 and UER-py BERT checkpoints (name mapping, vocab checks),
`tf_bundle` reads TF1 tensor bundles without TensorFlow, `albert_sop` is ALBERT's encoder + SOP head
without the masked-LM head, and `heads` says which architecture carries which sentence head (and
refuses the rest). Importing this package loads no torch: each module imports what it needs.
"""

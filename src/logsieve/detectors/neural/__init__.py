"""Shared torch parts of the neural detectors: the training loop and its base class,
attention layers, noise-robust supervised training, the next-event (top-g) logic and
semantic event vectors. Models live one family per module in :mod:`logsieve.detectors`.
"""

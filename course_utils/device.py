"""Reproducibility and device choice. torch is imported only when these are called."""

import random

import numpy as np


def seed_everything(seed):
    """Seed Python's random, numpy's global generator and torch (CPU and every CUDA device)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds all CUDA devices


def get_device():
    """"cuda" when a CUDA GPU is available, else "cpu"."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"

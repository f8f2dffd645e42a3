"""The versions the shims of :mod:`mmdsnet.compat` depend on, each read once.

Versions are compared as tuples of their leading numbers (``'2.10.0+cu130'`` -> ``(2, 10,
0)``): comparing the strings would put torch 2.10 before 2.6.
"""
import numpy as np
import torch

from mmdsnet.requirements import release

#: The torch installed, e.g. ``(2, 14, 1)``: the one torch-version flag every shim tests.
TORCH = release(torch.__version__)
#: The numpy installed, e.g. ``(2, 2, 6)``.
NUMPY = release(np.__version__)

"""mmdsnet.compat.versions: versions compare by their numbers, not as strings."""
import torch

from mmdsnet.compat.versions import TORCH, release


def test_release_compares_numbers_not_strings():
    assert release('2.10.0+cu130') > release('2.6.0') > release('2.1.2+cu121') == (2, 1, 2)
    assert '2.10.0' < '2.6.0'  # what comparing the strings would conclude


def test_torch_flag_is_the_installed_release():
    assert TORCH == release(torch.__version__) and len(TORCH) == 3

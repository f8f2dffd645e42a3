"""resize_bilinear, DSNet's resize of the global stream, is F.interpolate's bilinear resize, eager
and compiled."""
import pytest
import torch
import torch.nn.functional as F

from mmdsnet.models.layers import resize_bilinear


@pytest.mark.parametrize('shape, size', [
    ((2, 3, 64, 64), (8, 8)),
    ((1, 5, 56, 48), (7, 12)),
    ((2, 4, 28, 30), (14, 15)),
    ((1, 2, 8, 8), (1, 1)),
    ((1, 8, 200, 304), (25, 38)),
    ((1, 3, 34, 27), (4, 3)),  # not integer factors: falls back to F.interpolate
    ((1, 3, 10, 12), (20, 24)),  # upsampling
])
def test_resize_bilinear_equals_interpolate(shape, size):
    # A channel slice, as in the block: a non-contiguous input.
    x = torch.randn(shape[0], 2 * shape[1], *shape[2:])[:, shape[1]:]
    expected = F.interpolate(x, size=size, mode='bilinear', align_corners=False)
    torch.testing.assert_close(resize_bilinear(x, size), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('shape, size', [
    ((2, 4, 8, 8), (1, 1)),
    ((2, 4, 7, 6), (1, 1)),  # odd: the middle entry; even: the mean of the middle two
    ((2, 4, 6, 10), (1, 5)),
    ((2, 4, 16, 20), (2, 5)),
    ((2, 4, 2, 3), (8, 12)),
])
def test_compiled_resize_to_a_side_of_one_samples_the_middle(shape, size):
    """torch 2.1's compiled bilinear kernel takes a side resized to 1 from its first entry:
    without the workaround a DSNet whose global map has a side of 1 (any image under 64 pixels
    a side, e.g. the digits quickstart) computes another function when compiled."""
    torch._dynamo.reset()
    x = torch.randn(shape).contiguous(memory_format=torch.channels_last)
    compiled = torch.compile(resize_bilinear, backend='aot_eager')
    expected = F.interpolate(x, size=size, mode='bilinear', align_corners=False)
    torch.testing.assert_close(compiled(x, size), expected, rtol=1e-6, atol=1e-6)

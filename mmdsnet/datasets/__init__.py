from .checked_coco import CheckedCocoDataset
from .digits import DIGITS_CLASSES, digits_split, write_digits
from .shapes import (SHAPES_CLASSES, SHAPES_SEMANTIC_CLASSES, write_shapes_dataset,
                     write_shapes_semantic_dataset, write_shapes_semantic_split,
                     write_shapes_split)

__all__ = [
    'CheckedCocoDataset', 'DIGITS_CLASSES', 'digits_split', 'write_digits', 'SHAPES_CLASSES',
    'SHAPES_SEMANTIC_CLASSES', 'write_shapes_dataset', 'write_shapes_semantic_dataset',
    'write_shapes_semantic_split', 'write_shapes_split'
]

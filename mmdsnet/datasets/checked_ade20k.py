"""Semantic segmentation sets (ADE20K's layout) with the faults that would otherwise crash deep in
a transform or in the loss turned into a clear error or a counted, logged skip.

This module needs MMSegmentation (the ``seg`` extra) and is not imported by ``import mmdsnet``:
the segmentation configs import it through ``custom_imports``.
"""
import logging
import os.path as osp
from collections import Counter

import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.logging import print_log
from mmseg.datasets import ADE20KDataset, BaseSegDataset
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import DATASETS, TRANSFORMS


@TRANSFORMS.register_module()
class CheckSegMap(BaseTransform):
    """Check the label map that :class:`mmseg.datasets.transforms.LoadAnnotations` just loaded.

    Raises a ``ValueError`` naming the annotation file when the map's shape is not the image's
    (``ori_shape``, which resizing keeps) or when it holds labels (after ``reduce_zero_label``
    and any ``label_map``) that are neither a class index nor the ignore index.

    Args:
        num_classes (int): Number of classes; labels must be below it.
        ignore_index (int): The label that is ignored. Defaults to 255.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        """Check ``results['gt_seg_map']``.

        Args:
            results (dict): The result dict, after ``LoadImageFromFile`` and ``LoadAnnotations``.

        Returns:
            dict: ``results``, unchanged.
        """
        seg_map, path = results['gt_seg_map'], results['seg_map_path']
        image_shape = tuple(results['ori_shape'][:2])
        if seg_map.shape != image_shape:
            raise ValueError(
                f'{path}: the annotation is {"x".join(map(str, seg_map.shape))} (height x width'
                f'{" x channels" if seg_map.ndim == 3 else ""}), but its image '
                f'{results["img_path"]} is {image_shape[0]}x{image_shape[1]}: a label map must '
                'be a single-channel image of the same size as its image')
        labels = seg_map[seg_map >= self.num_classes]
        out_of_range = np.unique(labels[labels != self.ignore_index])
        if out_of_range.size:
            offset = int(results.get('reduce_zero_label', False))
            raise ValueError(
                f'{path}: labels {out_of_range.tolist()} are out of range for '
                f'{self.num_classes} classes (0-{self.num_classes - 1}, {self.ignore_index} '
                'ignored)' + (f'; the file holds {(out_of_range + offset).tolist()}: with '
                              'reduce_zero_label, 0 is ignored and class i is stored as i + 1'
                              if offset else ''))
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index})')


class SegChecksMixin:
    """The checks of :class:`CheckedADE20KDataset` and :class:`CheckedSegDataset`, for a subclass
    of :class:`mmseg.datasets.BaseSegDataset`.

    - An image without its annotation file is skipped; the skips are counted in :attr:`skipped`
      (a Counter) and logged once after loading. A ``ValueError`` names the image and annotation
      folders when no image is left.
    - A :class:`CheckSegMap` is placed after every ``LoadAnnotations`` of the pipeline (test-time
      augmentation's included), so that a label map of the wrong size or with labels out of
      range raises a ``ValueError`` naming the file when the sample is loaded.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._add_checks(self.pipeline)

    def _add_checks(self, compose) -> None:
        transforms = compose.transforms
        for index in reversed(range(len(transforms))):
            transform = transforms[index]
            for subroutine in getattr(transform, 'subroutines', ()):  # TestTimeAug
                self._add_checks(subroutine)
            following = transforms[index + 1] if index + 1 < len(transforms) else None
            if isinstance(transform, LoadAnnotations) and not isinstance(following, CheckSegMap):
                transforms.insert(
                    index + 1, CheckSegMap(len(self.metainfo['classes']), self.ignore_index))

    def load_data_list(self) -> list:
        """The images with an annotation file; the others are counted in :attr:`skipped`.

        Returns:
            list[dict]: The data infos of the images kept.
        """
        self.skipped = Counter()
        data_list = super().load_data_list()
        kept, missing = [], []
        for info in data_list:
            has_annotation = 'seg_map_path' not in info or fileio.exists(
                info['seg_map_path'], backend_args=self.backend_args)
            (kept if has_annotation else missing).append(info)
        img_dir = self.data_prefix.get('img_path')
        ann_dir = self.data_prefix.get('seg_map_path')
        if not kept:
            raise ValueError(
                f'no image of {img_dir} (*{self.img_suffix}) has its annotation in {ann_dir} '
                f'(*{self.seg_map_suffix}): {len(data_list)} images found'
                + (f', e.g. {missing[0]["img_path"]} without {missing[0]["seg_map_path"]}'
                   if missing else ''))
        if missing:
            self.skipped['images without an annotation file'] = len(missing)
            print_log(f'{img_dir}: skipped {len(missing)} of {len(data_list)} images without an '
                      f'annotation file in {ann_dir} (e.g. '
                      f'{osp.basename(missing[0]["img_path"])})', logger='current',
                      level=logging.WARNING)
        return kept


@DATASETS.register_module()
class CheckedADE20KDataset(SegChecksMixin, ADE20KDataset):
    """:class:`mmseg.datasets.ADE20KDataset` (150 classes, ``reduce_zero_label``) with the checks
    of :class:`SegChecksMixin`."""


@DATASETS.register_module()
class CheckedSegDataset(SegChecksMixin, BaseSegDataset):
    """:class:`mmseg.datasets.BaseSegDataset` with the checks of :class:`SegChecksMixin`: for sets
    with their own classes (``metainfo=dict(classes=...)``), which ADE20KDataset refuses unless
    they are among ADE's."""

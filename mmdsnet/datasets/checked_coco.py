"""COCO instances with the annotation faults that would otherwise pass silently, or crash deep
inside a transform, turned into a clear error or a counted, logged skip."""
import logging
from collections import Counter

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS
from mmengine.logging import print_log

MIN_POLYGON_COORDS = 6  # three points


@DATASETS.register_module()
class CheckedCocoDataset(CocoDataset):
    """:class:`mmdet.datasets.CocoDataset` that checks what it reads.

    - An annotation whose ``category_id`` is not among the file's categories raises a
      ``ValueError`` naming the file, the annotation and its image. (Categories of the file that
      ``metainfo`` leaves out are skipped, as in CocoDataset.)
    - When the pipeline loads masks, polygons of fewer than 3 points are dropped, and an instance
      left without a polygon (empty or all degenerate) is skipped: CocoDataset keeps it, and
      ``LoadAnnotations`` then fails with ``KeyError: 'mask'``.
    - Boxes of zero area or outside the image are skipped, as CocoDataset does, and images that
      ``filter_cfg`` drops (e.g. without annotations) are dropped as before; both are counted.

    What was skipped is logged once after loading and kept in :attr:`skipped` (a Counter).
    """

    def load_data_list(self):
        self.skipped = Counter()
        self._file_categories = None
        return super().load_data_list()

    def parse_data_info(self, raw_data_info):
        if self._file_categories is None:
            self._file_categories = set(self.coco.get_cat_ids())
        image = raw_data_info['raw_img_info']
        kept = []
        for ann in raw_data_info['raw_ann_info']:
            if ann['category_id'] not in self._file_categories:
                raise ValueError(
                    f'{self.ann_file}: annotation {ann.get("id")} of image '
                    f'{image["file_name"]!r} has category_id {ann["category_id"]}, which is not '
                    f'among the categories of the file {sorted(self._file_categories)}')
            if self._degenerate_box(ann, image):
                self.skipped['zero-area or out-of-image boxes'] += 1
                continue
            if self._needs_masks and isinstance(ann.get('segmentation'), list):
                polygons = [p for p in ann['segmentation'] if len(p) >= MIN_POLYGON_COORDS]
                if not polygons:
                    self.skipped['instances without a polygon of 3+ points'] += 1
                    continue
                ann = {**ann, 'segmentation': polygons}
            kept.append(ann)
        return super().parse_data_info({**raw_data_info, 'raw_ann_info': kept})

    @staticmethod
    def _degenerate_box(ann, image):
        x1, y1, w, h = ann['bbox']
        inside_w = min(x1 + w, image['width']) - max(x1, 0)
        inside_h = min(y1 + h, image['height']) - max(y1, 0)
        return inside_w <= 0 or inside_h <= 0 or ann.get('area', 1) <= 0 or w < 1 or h < 1

    @property
    def _needs_masks(self):
        return any(getattr(step, 'with_mask', False) for step in self.pipeline.transforms)

    def filter_data(self):
        data_list = super().filter_data()
        if len(data_list) < len(self.data_list):
            self.skipped['images dropped by filter_cfg (no annotations or too small)'] = (
                len(self.data_list) - len(data_list))
        if self.skipped:
            print_log(f'{self.ann_file}: skipped ' +
                      ', '.join(f'{count} {what}' for what, count in self.skipped.items()),
                      logger='current', level=logging.WARNING)
        return data_list

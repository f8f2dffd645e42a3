"""A small generated set of circles, triangles and rectangles: COCO-format instance segmentation
or ADE20K-layout semantic segmentation.

Each image is a noisy background with a few non-overlapping filled shapes of random colour,
size and rotation. Every instance is one polygon; the pixels are painted from that same polygon,
so the ``segmentation`` in the annotation file is the exact outline of what is drawn.

Layout written under ``root`` (COCO's, with split names ``train`` and ``val``)::

    root/train/000000.png ...
    root/val/000000.png ...
    root/annotations/instances_train.json
    root/annotations/instances_val.json

The semantic set (:func:`write_shapes_semantic_dataset`) has ADE20K's layout and label
convention: 0 unlabelled (unused; ignored with ``reduce_zero_label``), 1 background, then
2, 3, 4 for circle, triangle, rectangle, i.e. :data:`SHAPES_SEMANTIC_CLASSES` once the zero label
is reduced. The label maps are painted from the polygons that paint the images::

    root/images/training/000000.jpg ...    root/annotations/training/000000.png ...
    root/images/validation/000000.jpg ...  root/annotations/validation/000000.png ...

Image ``i`` of a split is drawn from a generator seeded with ``(seed, split, i)`` alone, so a
split is reproducible and a smaller split is a prefix of a larger one. The ``training`` and
``validation`` splits of the semantic set draw the same images as ``train`` and ``val``.
"""
import json
import os
import os.path as osp
from typing import Dict, Iterator, List, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_utils

SHAPES_CLASSES = ('circle', 'triangle', 'rectangle')
SPLITS = ('train', 'val')
SHAPES_SEMANTIC_CLASSES = ('background', ) + SHAPES_CLASSES
SEMANTIC_SPLITS = ('training', 'validation')  # ADE20K's names of SPLITS

MAX_OBJECTS = 4
MIN_SIZE_FRACTION = 0.15  # object diameter / image side
MAX_SIZE_FRACTION = 0.45
NOISE_STD = 18.
MIN_COLOR_DISTANCE = 120  # L1 distance (0-765) between an object's colour and the background
PLACEMENT_ATTEMPTS = 50
SUBPIXEL_BITS = 4  # cv2.fillPoly fixed-point precision: vertices are drawn at 1/16 pixel


def _polygon(rng: np.random.Generator, class_index: int, center: np.ndarray,
             radius: float) -> np.ndarray:
    """Vertices (N, 2) in pixels of a shape inscribed in the circle (center, radius)."""
    rotation = rng.uniform(0, 2 * np.pi)
    if SHAPES_CLASSES[class_index] == 'circle':
        angles = np.linspace(0, 2 * np.pi, max(16, int(radius)), endpoint=False)
        radii = np.full_like(angles, radius)
    elif SHAPES_CLASSES[class_index] == 'triangle':
        angles = rotation + np.deg2rad([0, 120, 240] + rng.uniform(-20, 20, size=3))
        radii = radius * rng.uniform(0.85, 1.0, size=3)
    else:
        # The diagonal's half-angle sets the aspect ratio, from 1:1 (45 degrees) to about 1:3.
        half = np.deg2rad(rng.uniform(18, 45))
        angles = rotation + np.array([half, np.pi - half, np.pi + half, -half])
        radii = np.full_like(angles, radius)
    return center + radii[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _fill_polygon(canvas: np.ndarray, polygon: np.ndarray, value) -> None:
    """Paint ``polygon`` (N, 2) into ``canvas`` in place at subpixel precision."""
    fixed_point = np.round(polygon * (1 << SUBPIXEL_BITS)).astype(np.int32)
    cv2.fillPoly(canvas, [fixed_point], value, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)


def _object_color(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    while True:
        color = rng.integers(0, 256, size=3)
        if np.abs(color - background).sum() >= MIN_COLOR_DISTANCE:
            return color


def draw_shapes_image(rng: np.random.Generator,
                      image_size: int) -> Tuple[np.ndarray, List[Tuple[int, np.ndarray]]]:
    """One image and its instances.

    Returns:
        tuple: The BGR uint8 image (image_size, image_size, 3) and a list of
        ``(class_index, polygon)`` with polygon (N, 2) float vertices in pixels.
    """
    background = rng.integers(0, 256, size=3)
    canvas = np.empty((image_size, image_size, 3), dtype=np.float64)
    canvas[:] = background
    placed = []  # (center, radius) of drawn shapes, to keep them apart
    instances = []
    for _ in range(rng.integers(1, MAX_OBJECTS + 1)):
        for _ in range(PLACEMENT_ATTEMPTS):
            radius = rng.uniform(MIN_SIZE_FRACTION, MAX_SIZE_FRACTION) * image_size / 2
            center = rng.uniform(radius, image_size - radius, size=2)
            if all(np.linalg.norm(center - c) > radius + r + 2 for c, r in placed):
                break
        else:
            continue
        class_index = int(rng.integers(len(SHAPES_CLASSES)))
        polygon = _polygon(rng, class_index, center, radius)
        _fill_polygon(canvas, polygon, _object_color(rng, background).tolist())
        placed.append((center, radius))
        instances.append((class_index, polygon))
    canvas += rng.normal(0, NOISE_STD, size=canvas.shape)
    return np.clip(np.round(canvas), 0, 255).astype(np.uint8), instances


def _annotation(polygon: np.ndarray, image_size: int, ann_id: int, image_id: int,
                class_index: int) -> Dict:
    polygon = np.clip(polygon, 0, image_size)
    x_min, y_min = polygon.min(axis=0)
    x_max, y_max = polygon.max(axis=0)
    segmentation = [np.round(polygon, 2).ravel().tolist()]
    rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, image_size, image_size))
    return dict(
        id=ann_id,
        image_id=image_id,
        category_id=class_index + 1,
        segmentation=segmentation,
        area=float(mask_utils.area(rle)),
        bbox=[round(float(v), 2) for v in (x_min, y_min, x_max - x_min, y_max - y_min)],
        iscrowd=0)


def _draw_split(split: str, splits: Tuple[str, str], num_images: int, image_size: int,
                seed: int) -> Iterator[Tuple[int, np.ndarray, List[Tuple[int, np.ndarray]]]]:
    """Check the arguments, then draw the images of ``split`` (one of ``splits``) one by one.

    Returns:
        Iterator[tuple]: ``(image_id, image, instances)`` as :func:`draw_shapes_image` returns.
    """
    if split not in splits:
        raise ValueError(f'split must be one of {splits}, got {split!r}')
    if image_size < 32:
        raise ValueError(f'image_size must be at least 32, got {image_size}')
    return ((image_id,
             *draw_shapes_image(np.random.default_rng([seed, splits.index(split), image_id]),
                                image_size)) for image_id in range(num_images))


def write_shapes_split(root: str, split: str, num_images: int, image_size: int = 128,
                       seed: int = 0) -> str:
    """Write one split's images and COCO annotation file under ``root``.

    Args:
        root (str): Dataset root.
        split (str): ``'train'`` or ``'val'``.
        num_images (int): Number of images.
        image_size (int): Side of the square images in pixels. Defaults to 128.
        seed (int): Base seed. Defaults to 0.

    Returns:
        str: Path of the annotation file.
    """
    draws = _draw_split(split, SPLITS, num_images, image_size, seed)
    os.makedirs(osp.join(root, split), exist_ok=True)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    images, annotations = [], []
    for image_id, image, instances in draws:
        file_name = f'{image_id:06d}.png'
        cv2.imwrite(osp.join(root, split, file_name), image)
        images.append(dict(id=image_id, file_name=file_name, width=image_size,
                           height=image_size))
        for class_index, polygon in instances:
            annotations.append(
                _annotation(polygon, image_size, len(annotations) + 1, image_id, class_index))
    categories = [dict(id=i + 1, name=name) for i, name in enumerate(SHAPES_CLASSES)]
    ann_file = osp.join(root, 'annotations', f'instances_{split}.json')
    with open(ann_file, 'w') as file:
        json.dump(dict(images=images, annotations=annotations, categories=categories), file)
    return ann_file


def write_shapes_dataset(root: str, num_train: int = 1000, num_val: int = 100,
                         image_size: int = 128, seed: int = 0) -> Dict[str, str]:
    """Write the train and val splits under ``root``; returns split name -> annotation file."""
    return {
        split: write_shapes_split(root, split, num_images, image_size, seed)
        for split, num_images in zip(SPLITS, (num_train, num_val))
    }


def shapes_label_map(instances: List[Tuple[int, np.ndarray]], image_size: int) -> np.ndarray:
    """The ADE20K-convention label map of an image's instances (see the module's docstring).

    Args:
        instances (list[tuple]): ``(class_index, polygon)`` as :func:`draw_shapes_image` returns.
        image_size (int): Side of the square image in pixels.

    Returns:
        np.ndarray: uint8 (image_size, image_size): 1 background, ``class_index + 2`` inside a
        shape.
    """
    label_map = np.ones((image_size, image_size), dtype=np.uint8)
    for class_index, polygon in instances:
        _fill_polygon(label_map, polygon, class_index + 2)
    return label_map


def write_shapes_semantic_split(root: str, split: str, num_images: int, image_size: int = 128,
                                seed: int = 0) -> Tuple[str, str]:
    """Write one split's JPEG images and PNG label maps under ``root`` in ADE20K's layout.

    Args:
        root (str): Dataset root.
        split (str): ``'training'`` or ``'validation'``.
        num_images (int): Number of images.
        image_size (int): Side of the square images in pixels. Defaults to 128.
        seed (int): Base seed. Defaults to 0.

    Returns:
        tuple[str, str]: The image and the annotation folders.
    """
    draws = _draw_split(split, SEMANTIC_SPLITS, num_images, image_size, seed)
    folders = tuple(osp.join(root, kind, split) for kind in ('images', 'annotations'))
    for folder in folders:
        os.makedirs(folder, exist_ok=True)
    for image_id, image, instances in draws:
        cv2.imwrite(osp.join(folders[0], f'{image_id:06d}.jpg'), image)
        cv2.imwrite(osp.join(folders[1], f'{image_id:06d}.png'),
                    shapes_label_map(instances, image_size))
    return folders


def write_shapes_semantic_dataset(root: str, num_train: int = 1000, num_val: int = 100,
                                  image_size: int = 128,
                                  seed: int = 0) -> Dict[str, Tuple[str, str]]:
    """Write the training and validation splits under ``root`` in ADE20K's layout; returns
    split name -> (image folder, annotation folder)."""
    return {
        split: write_shapes_semantic_split(root, split, num_images, image_size, seed)
        for split, num_images in zip(SEMANTIC_SPLITS, (num_train, num_val))
    }

"""DSNet in OpenMMLab's model index: ``model-index.yml`` and the metafiles it imports.

:func:`register_models` gives MMPretrain's ``ModelHub`` the ImageNet models of
``configs/metafile.yml``, so that ``mmpretrain.list_models``, ``get_model`` and the inferencers
find them by name, and ``pretrained=True`` loads their ``Weights``: PaddleClas' release URL,
downloaded once and converted in memory
(:func:`mmdsnet.models.backbones.dsnet_weights.load_from_url`); ``import mmdsnet`` calls it.
:func:`model_zoo_tables` renders README's model-zoo tables from the metafiles (``python -m
mmdsnet.model_index`` prints them), and a test checks that README shows them as rendered.
"""
from pathlib import Path
from typing import Dict, List

import yaml

#: The repository root, where ``model-index.yml`` and ``configs/`` sit next to the package (the
#: editable install of tools/install.sh); metafile config paths are relative to it.
REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_INDEX = REPO_ROOT / 'model-index.yml'
CLASSIFICATION_METAFILE = REPO_ROOT / 'configs' / 'metafile.yml'
DETECTION_METAFILE = REPO_ROOT / 'configs' / 'metafile_coco.yml'
SEGMENTATION_METAFILE = REPO_ROOT / 'configs' / 'metafile_ade20k.yml'

_registered = False


def register_models() -> None:
    """Register the ImageNet models with MMPretrain's ``ModelHub``; once per process.

    Only the classification metafile: MMPretrain builds every registered name as an
    ``ImageClassifier``, which the COCO configs are not. Without the repository's ``configs/``
    (the package installed on its own) there is nothing to register.
    """
    global _registered
    if _registered or not CLASSIFICATION_METAFILE.is_file():
        return
    from mmpretrain.apis import ModelHub
    ModelHub.register_model_index(CLASSIFICATION_METAFILE, config_prefix=REPO_ROOT)
    _registered = True


def load_metafile(path: Path) -> Dict:
    """A metafile as a dict (its Collections and Models)."""
    with open(path, encoding='utf-8') as file:
        return yaml.safe_load(file)


def _classification_rows(models: List[Dict]) -> List[str]:
    rows = []
    for model in models:
        metrics = model['Results'][0]['Metrics']
        rows.append(
            f"| `{model['Name']}` | {model['Metadata']['Parameters'] / 1e6:.2f} | "
            f"{model['Metadata']['FLOPs'] / 1e9:.2f} | {metrics['Top 1 Accuracy']:.1f} | "
            f"{metrics['Top 5 Accuracy']:.1f} | `{model['Config']}` | "
            f"[PaddleClas]({model['Weights']}) |")
    return rows


def _detection_rows(models: List[Dict]) -> List[str]:
    rows = []
    for model in models:
        tasks = {'Mask R-CNN': 'box, mask', 'RetinaNet': 'box'}[model['In Collection']]
        rows.append(f"| `{model['Name']}` | {model['In Collection']} | "
                    f"{model['Metadata']['Epochs']} | {tasks}: not measured yet | "
                    f"`{model['Config']}` |")
    return rows


def _segmentation_rows(models: List[Dict]) -> List[str]:
    return [f"| `{model['Name']}` | {model['In Collection']} | "
            f"{model['Metadata']['Iterations'] // 1000}k | not measured yet | "
            f"`{model['Config']}` |" for model in models]


def model_zoo_tables() -> str:
    """README's model-zoo tables (Markdown), rendered from the three metafiles."""
    classification = load_metafile(CLASSIFICATION_METAFILE)['Models']
    detection = load_metafile(DETECTION_METAFILE)['Models']
    segmentation = load_metafile(SEGMENTATION_METAFILE)['Models']
    lines = [
        '| model | params (M) | FLOPs (G) | top-1 (%) | top-5 (%) | config | weights |',
        '|---|---:|---:|---:|---:|---|---|',
        *_classification_rows(classification),
        '',
        '| model | detector | epochs | COCO AP | config |',
        '|---|---|---:|---|---|',
        *_detection_rows(detection),
        '',
        '| model | segmentor | iterations | ADE20K mIoU | config |',
        '|---|---|---:|---|---|',
        *_segmentation_rows(segmentation),
    ]
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    print(model_zoo_tables(), end='')

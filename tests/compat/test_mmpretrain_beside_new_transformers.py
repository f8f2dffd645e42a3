"""mmdsnet.compat.mmpretrain_beside_new_transformers: ``import mmpretrain.models`` fails beside
transformers >= 4.52 upstream (reproduced in a fresh interpreter), and works after
``import mmdsnet``, whichever of the two is imported first."""
import pytest

from mmdsnet.compat.mmpretrain_beside_new_transformers import \
    TRANSFORMERS_BREAKS_MMPRETRAIN_MULTIMODAL
from mmdsnet.requirements import installed_version, release


def new_transformers_installed():
    version = installed_version('transformers')
    breaking = TRANSFORMERS_BREAKS_MMPRETRAIN_MULTIMODAL
    return version is not None and release(version)[:2] >= breaking


needs_new_transformers = pytest.mark.skipif(
    not new_transformers_installed(),
    reason='transformers >= 4.52 is not installed (tools/install.sh --tests installs it)')


@needs_new_transformers
def test_mmpretrain_does_not_import_beside_new_transformers_upstream(run_python):
    result = run_python('import mmpretrain.models\n')
    assert result.returncode != 0
    assert 'multimodal' in result.stderr


@needs_new_transformers
def test_mmpretrain_imports_beside_new_transformers(run_python):
    result = run_python('import mmdsnet\n'
                        'from mmpretrain.registry import MODELS\n'
                        'from mmpretrain.models import ImageClassifier\n'
                        "print(MODELS.get('DSNet').__name__)\n"
                        "MODELS.build(dict(type='Blip2Caption'))\n")
    assert result.stdout.strip() == 'DSNet', result.stderr
    # the multimodal models become mmpretrain's own placeholders that say what is missing
    assert result.returncode != 0 and 'multi-modal dependencies' in result.stderr


@needs_new_transformers
def test_mmpretrain_apis_imported_before_mmdsnet(run_python):
    result = run_python('from mmpretrain.apis import ImageClassificationInferencer\n'
                        'import mmdsnet\n'
                        'import mmpretrain.models\n'
                        "print('imported')\n")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == 'imported'

"""mmdsnet.engine.compile: what MMEngine's ``compile`` switch compiles, and what stays eager.

The models have a DSNet of one block per stage. The graphs are compiled with dynamo and
AOTAutograd (``aot_eager``: the graphs inductor would get, run by eager kernels), because
inductor's C++ code takes minutes to build on CI's two cores;
``tests/tools/test_compiled_training.py`` trains with inductor itself."""
import copy
import os

import pytest
import torch
from mmengine.registry import DefaultScope
from torch._dynamo.testing import CompileCounter

import mmdsnet  # noqa: F401
from mmdsnet.engine.compile import (cannot_compile_reason, compile_backbone, compile_options,
                                    is_compiled, use_persistent_caches)

TINY_ARCH = dict(embed_dims=[16, 32, 32, 64], depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 2])
# No random draws (drop path, attention dropout), so that compiled and eager runs compare.
TINY_BACKBONE = dict(type='DSNet', arch=TINY_ARCH, drop_path_rate=0., attn_drop_rate=0.)


def build(scope, cfg):
    from mmengine.registry import MODELS
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(cfg)


def tiny_classifier():
    torch.manual_seed(0)
    return build('mmpretrain', dict(
        type='ImageClassifier', backbone=TINY_BACKBONE, neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=64)))


def tiny_detector_features(**backbone_options):
    """A Mask R-CNN's backbone and FPN, as the COCO configs build them, with the tiny DSNet
    (no drop path, unless given)."""
    from mmengine.config import Config
    cfg = Config.fromfile(os.path.join(os.path.dirname(__file__), '..', '..', 'configs',
                                       'mask_rcnn_dsnet_tiny_coco.py'))
    cfg.model.backbone.update({'arch': TINY_ARCH, 'init_cfg': None, 'drop_path_rate': 0.,
                               **backbone_options})
    cfg.model.neck.update(in_channels=TINY_ARCH['embed_dims'], out_channels=16)
    torch.manual_seed(0)
    return build('mmdet', cfg.model)


@pytest.mark.parametrize('value, expected', [(None, None), (False, None), (True, {}),
                                             (dict(dynamic=True), dict(dynamic=True))])
def test_compile_options_read_mmengines_switch(value, expected):
    assert compile_options(value) == expected


def test_compile_options_name_an_unknown_torch_compile_argument():
    with pytest.raises(ValueError, match=r"torch.compile takes no \['dynamc'\]"):
        compile_options(dict(dynamc=True))
    with pytest.raises(TypeError, match='compile must be True, False or a dict'):
        compile_options('inductor')


def test_cannot_compile_names_the_missing_cxx_compiler():
    from torch._inductor import config
    with config.patch({'cpp.cxx': (None, 'no-such-cxx-compiler')}):
        reason = cannot_compile_reason({}, torch.device('cpu'))
        # a backend that generates no C++ does not need one
        assert cannot_compile_reason(dict(backend='aot_eager'), torch.device('cpu')) is None
    assert "C++ compiler for the CPU and none of ['no-such-cxx-compiler']" in reason


def test_cannot_compile_is_none_with_a_cxx_compiler():
    assert cannot_compile_reason({}, torch.device('cpu')) is None


def test_persistent_caches_default_to_the_user_cache_and_honour_the_environment(
        monkeypatch, tmp_path):
    monkeypatch.delenv('TORCHINDUCTOR_CACHE_DIR', raising=False)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
    assert use_persistent_caches() == str(tmp_path / 'xdg' / 'mmdsnet' / 'inductor')
    assert os.environ['TORCHINDUCTOR_CACHE_DIR'] == str(tmp_path / 'xdg' / 'mmdsnet' / 'inductor')
    monkeypatch.setenv('TORCHINDUCTOR_CACHE_DIR', str(tmp_path / 'mine'))
    assert use_persistent_caches() == str(tmp_path / 'mine')
    assert (tmp_path / 'mine').is_dir()


def test_a_model_without_a_backbone_is_refused_with_the_fix():
    with pytest.raises(TypeError, match='Linear has no backbone to compile .*compile=False'):
        compile_backbone(torch.nn.Linear(2, 2), {})


def classifier_step(model, images, labels):
    """MMPretrain's training loss and its gradients."""
    from mmpretrain.structures import DataSample
    samples = [DataSample().set_gt_label(int(label)) for label in labels]
    model.zero_grad(set_to_none=True)
    loss = model.loss(images, samples)['loss']
    loss.backward()
    return loss.detach(), {name: param.grad for name, param in model.named_parameters()}


def test_compiled_classifier_computes_the_eager_function_and_keeps_its_keys():
    torch._dynamo.reset()
    eager = tiny_classifier().train()
    compiled = copy.deepcopy(eager)
    compile_backbone(compiled, dict(backend='aot_eager'))
    assert is_compiled(compiled) and not is_compiled(eager)
    # The parameters are the eager ones: state dicts (checkpoints) have the same keys.
    assert list(compiled.state_dict()) == list(eager.state_dict())

    images, labels = torch.rand(4, 3, 64, 64), torch.tensor([0, 3, 5, 9])
    eager_loss, eager_grads = classifier_step(eager, images, labels)
    compiled_loss, compiled_grads = classifier_step(compiled, images, labels)
    torch.testing.assert_close(compiled_loss, eager_loss, rtol=1e-4, atol=1e-5)
    for name, grad in eager_grads.items():
        torch.testing.assert_close(compiled_grads[name], grad, rtol=1e-3, atol=1e-4,
                                   msg=lambda message, name=name: f'{name}: {message}')
    eager.eval(), compiled.eval()
    with torch.no_grad():
        torch.testing.assert_close(compiled.extract_feat(images), eager.extract_feat(images),
                                   rtol=1e-4, atol=1e-5)


def test_a_deep_copy_of_a_compiled_model_computes_with_its_own_weights():
    """MMEngine's EMA keeps a deep copy of the model; it must not run the original's."""
    torch._dynamo.reset()
    model = tiny_classifier().eval()
    compile_backbone(model, dict(backend='eager'))
    average = copy.deepcopy(model)
    with torch.no_grad():
        for param in average.parameters():
            param.mul_(0.5)
        images = torch.rand(2, 3, 64, 64)
        features = model.extract_feat(images)[0]
        averaged_features = average.extract_feat(images)[0]
        eager_features = average.neck(type(average.backbone).forward(average.backbone, images))
    assert is_compiled(average)
    assert not torch.allclose(features, averaged_features)
    torch.testing.assert_close(averaged_features, eager_features[0])


@pytest.mark.parametrize('options', [
    dict(with_cp=True),
    dict(norm_eval=True, frozen_stages=1),
], ids=['with_cp', 'norm_eval_frozen_stages'])
def test_compiled_detector_features_compute_the_eager_function(options):
    torch._dynamo.reset()
    eager = tiny_detector_features(**options).train()
    compiled = copy.deepcopy(eager)
    compile_backbone(compiled, dict(backend='aot_eager'))
    images = torch.rand(2, 3, 128, 160)
    results = []
    for model in (eager, compiled):
        model.zero_grad(set_to_none=True)
        features = model.extract_feat(images)
        sum(level.square().mean() for level in features).backward()
        results.append((features, {name: param.grad for name, param in model.named_parameters()}))
    (eager_features, eager_grads), (compiled_features, compiled_grads) = results
    torch.testing.assert_close(compiled_features, eager_features, rtol=1e-4, atol=1e-5)
    assert {name for name, grad in compiled_grads.items() if grad is None} == {
        name for name, grad in eager_grads.items() if grad is None}
    for name, grad in eager_grads.items():
        if grad is not None:
            torch.testing.assert_close(compiled_grads[name], grad, rtol=1e-3, atol=1e-5)


def test_compiled_features_under_autocast_match_eager_autocast():
    """--amp runs the forward under autocast (fp16 on CUDA); here CPU's bf16 autocast."""
    torch._dynamo.reset()
    eager = tiny_detector_features().train()
    compiled = copy.deepcopy(eager)
    compile_backbone(compiled, dict(backend='aot_eager'))
    images = torch.rand(2, 3, 128, 160)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        expected, outputs = eager.extract_feat(images), compiled.extract_feat(images)
    # bf16 keeps 8 bits of mantissa, and the compiled graph resizes through F.interpolate where
    # eager takes the exact shortcut for even factors: compare the mean error to the mean size.
    for out, reference in zip(outputs, expected):
        assert out.dtype == torch.bfloat16
        error = (out.float() - reference.float()).abs().mean() / reference.float().abs().mean()
        assert error < 0.01


def test_compiled_drop_path_draws_from_the_global_generator():
    """Stochastic depth under compile: masks change from step to step, and a seed repeats them
    (what the RNG-state hook relies on to resume exactly)."""
    torch._dynamo.reset()
    model = tiny_detector_features(drop_path_rate=0.5).train()
    compile_backbone(model, dict(backend='aot_eager'))
    images = torch.rand(2, 3, 128, 160)
    torch.manual_seed(1)
    first, second = (model.extract_feat(images)[0].detach() for _ in range(2))
    torch.manual_seed(1)
    repeated = model.extract_feat(images)[0].detach()
    assert not torch.equal(first, second)
    torch.testing.assert_close(repeated, first)


def test_detection_batches_of_six_sizes_and_a_smaller_last_batch_compile_at_most_twice():
    """Detection pads each batch to its own size: the first size compiles, the second compiles
    a graph with dynamic batch, height and width, and no later one compiles again. The second
    batch changes only the height, after which plain dynamo would have compiled a third time,
    at the first new width, and a fourth at the epoch's smaller last batch."""
    torch._dynamo.reset()
    model = tiny_detector_features().train()
    counter = CompileCounter()
    compile_backbone(model, dict(backend=counter))
    shapes = [(3, 128, 160), (3, 192, 160), (3, 192, 192), (3, 128, 256), (3, 256, 128),
              (3, 224, 288), (2, 160, 224)]
    for batch, height, width in shapes:
        features = model.extract_feat(torch.rand(batch, 3, height, width))
        assert [tuple(level.shape) for level in features[:4]] == [
            (batch, 16, height // stride, width // stride) for stride in (4, 8, 16, 32)]
        sum(level.mean() for level in features).backward()
    assert counter.frame_count <= 2


def test_a_classifiers_smaller_last_batch_compiles_once_for_every_later_epoch():
    """Fixed-size classification batches: one graph for the full batch, one more for the
    epoch's smaller last batch, which then also serves every later epoch's."""
    torch._dynamo.reset()
    model = tiny_classifier().train()
    counter = CompileCounter()
    compile_backbone(model, dict(backend=counter))
    for _epoch in range(2):
        for batch in (4, 4, 3):
            model(torch.rand(batch, 3, 64, 64), mode='tensor').sum().backward()
    assert counter.frame_count == 2

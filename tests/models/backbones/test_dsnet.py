import re

import pytest
import torch
import torch.nn as nn
from mmcv.cnn.bricks import DropPath
from torch.nn.modules.batchnorm import _BatchNorm

import mmdsnet  # noqa: F401  registers DSNet
from mmdsnet.models import DSNet
from mmdsnet.models.layers import fold_norm_into_conv


def build_classifier(arch, **backbone_kwargs):
    from mmpretrain.registry import MODELS
    return MODELS.build(
        dict(
            type='ImageClassifier',
            backbone=dict(type='DSNet', arch=arch, **backbone_kwargs),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=1000, in_channels=512)))


def randomize_norm_stats(model, seed=0):
    """Non-trivial BatchNorm statistics and affine parameters, so eval outputs depend on them."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (_BatchNorm, nn.LayerNorm)):
            shape = module.weight.shape
            module.weight.data = 1 + 0.1 * torch.randn(shape, generator=generator)
            module.bias.data = 0.1 * torch.randn(shape, generator=generator)
        if isinstance(module, _BatchNorm):
            module.running_mean = 0.1 * torch.randn(shape, generator=generator)
            module.running_var = 0.5 + torch.rand(shape, generator=generator)
    return model


def metafile_metadata(arch):
    """FLOPs and parameters that configs/metafile.yml (and README) give for ``arch``."""
    from mmdsnet import model_index
    models = model_index.load_metafile(model_index.CLASSIFICATION_METAFILE)['Models']
    return next(model['Metadata'] for model in models
                if model['Name'] == f'dsnet-{arch}_3rdparty_in1k')


@pytest.mark.parametrize('arch', ['tiny', 'small', 'base'])
def test_param_count_with_in1k_head(arch):
    model = build_classifier(arch)
    assert sum(p.numel() for p in model.parameters()) == metafile_metadata(arch)['Parameters']


@pytest.mark.parametrize('arch', ['tiny', 'small', 'base'])
def test_flops_at_224(arch):
    from mmengine.analysis import get_model_complexity_info

    # The default, fused attention: import mmdsnet gives the counter a handle for it.
    model = build_classifier(arch).eval()
    flops = get_model_complexity_info(model, input_shape=(3, 224, 224), show_table=False,
                                      show_arch=False)['flops']
    assert flops == metafile_metadata(arch)['FLOPs']


@pytest.mark.parametrize('height, width', [(224, 224), (320, 256), (333, 500), (800, 1216)])
def test_output_shapes(height, width):
    model = DSNet('tiny', out_indices=(0, 1, 2, 3)).eval()
    with torch.no_grad():
        outs = model(torch.rand(1, 3, height, width))
    expected = []
    for stride, channels in zip((4, 8, 16, 32), (64, 128, 320, 512)):
        expected.append((1, channels, height // stride, width // stride))
    assert [tuple(out.shape) for out in outs] == expected


def test_smallest_input_and_negative_out_indices():
    model = DSNet('tiny', out_indices=(-1, 0)).eval()
    assert model.out_indices == (0, 3)
    with torch.no_grad():
        outs = model(torch.rand(2, 3, 32, 45))
    assert [tuple(out.shape) for out in outs] == [(2, 64, 8, 11), (2, 512, 1, 1)]


def test_stage4_output_carries_final_norm():
    model = randomize_norm_stats(DSNet('tiny', out_indices=(3, ))).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        out = model(x)[0]
        before_norm = x
        for stage in model.stages:
            before_norm = stage(before_norm)
    torch.testing.assert_close(out, model.final_norm(before_norm))
    assert not torch.allclose(out, before_norm)


def test_fused_attention_matches_explicit():
    fused = randomize_norm_stats(DSNet('tiny', out_indices=(0, 1, 2, 3))).eval()
    explicit = DSNet('tiny', out_indices=(0, 1, 2, 3), fused_attention=False).eval()
    explicit.load_state_dict(fused.state_dict())
    x = torch.rand(2, 3, 96, 136)
    with torch.no_grad():
        for a, b in zip(fused(x), explicit(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_channels_last_same_outputs():
    reference = randomize_norm_stats(DSNet('tiny', out_indices=(0, 1, 2, 3),
                                           channels_last=False)).eval()
    model = DSNet('tiny', out_indices=(0, 1, 2, 3)).eval()
    model.load_state_dict(reference.state_dict())
    x = torch.rand(2, 3, 96, 136)
    with torch.no_grad():
        for expected, out in zip(reference(x), model(x)):
            # The layouts sum in other orders: fp32 rounding, relative to the outputs' size.
            torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_switch_to_deploy_folds_norms_same_outputs():
    model = randomize_norm_stats(DSNet('tiny', out_indices=(0, 1, 2, 3))).eval()
    x = torch.rand(2, 3, 96, 136)
    with torch.no_grad():
        expected = model(x)
        model.switch_to_deploy()
        model.switch_to_deploy()  # a no-op the second time
        outs = model(x)
    for out, reference in zip(outs, expected):
        torch.testing.assert_close(out, reference, rtol=1e-5, atol=1e-5)

    block = model.stages[0].blocks[0]
    assert all(isinstance(norm, nn.Identity)
               for norm in (block.norm, block.mlp_norm, block.co_attention.local_norm))
    # Before a padded depthwise conv folding is not exact: that norm stays.
    assert isinstance(block.local_stream.norm, nn.BatchNorm2d)
    with pytest.raises(RuntimeError, match='cannot be trained'):
        model.train()


def test_switch_to_deploy_needs_eval_mode_and_unpadded_1x1_convs():
    with pytest.raises(RuntimeError, match='eval mode'):
        DSNet('tiny').train().switch_to_deploy()
    with pytest.raises(ValueError, match='cannot fold'):
        fold_norm_into_conv(nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3, padding=1))


def test_with_cp_same_loss_and_grads():
    model = DSNet('tiny', out_indices=(0, 1, 2, 3))
    model_cp = DSNet('tiny', out_indices=(0, 1, 2, 3), with_cp=True)
    model_cp.load_state_dict(model.state_dict())
    x = torch.rand(2, 3, 64, 64)

    losses = []
    for net in (model, model_cp):
        net.train()
        torch.manual_seed(0)  # same drop-path and attention-dropout draws
        loss = sum(out.square().mean() for out in net(x))
        loss.backward()
        losses.append(loss)
    torch.testing.assert_close(losses[0], losses[1])
    for (name, p), p_cp in zip(model.named_parameters(), model_cp.parameters()):
        torch.testing.assert_close(p.grad, p_cp.grad, msg=name)


def test_frozen_stages_and_norm_eval():
    model = DSNet('tiny', out_indices=(0, 1, 2, 3), frozen_stages=1, norm_eval=True)
    model.train()
    for i, stage in enumerate(model.stages):
        assert all(p.requires_grad == (i > 1) for p in stage.parameters())
        assert all(m.training == (i > 1) for m in stage.modules() if not isinstance(m, _BatchNorm))
    assert all(not m.training for m in model.modules() if isinstance(m, _BatchNorm))
    assert model.final_norm.weight.requires_grad

    sum(out.sum() for out in model(torch.rand(1, 3, 64, 64))).backward()
    for i, stage in enumerate(model.stages):
        assert all((p.grad is not None) == (i > 1) for p in stage.parameters())

    fully_frozen = DSNet('tiny', frozen_stages=3).train()
    assert not any(p.requires_grad for p in fully_frozen.parameters())
    assert not fully_frozen.final_norm.training


def test_norm_eval_off_trains_bn():
    model = DSNet('tiny').train()
    assert all(m.training for m in model.modules())


@pytest.mark.parametrize('schedule, expected_stage3', [
    ('per_stage', torch.linspace(0, 0.1, 9)[:4].tolist()),
    ('linear', torch.linspace(0, 0.1, 9)[4:8].tolist()),
])
def test_drop_path_schedule(schedule, expected_stage3):
    model = DSNet('tiny', drop_path_rate=0.1, drop_path_schedule=schedule)
    rates = [
        block.drop_path.drop_prob if isinstance(block.drop_path, DropPath) else 0.
        for block in model.stages[2].blocks
    ]
    assert rates == pytest.approx(expected_stage3)
    assert isinstance(model.stages[0].blocks[0].drop_path, nn.Identity)


def test_attn_drop_rate_reaches_both_attentions():
    block = DSNet('tiny', attn_drop_rate=0.3).stages[0].blocks[0]
    assert block.global_stream.attn_drop_rate == 0.3
    assert block.co_attention.attn_drop_rate == 0.3
    assert DSNet('tiny').stages[0].blocks[0].co_attention.attn_drop_rate == 0.1


@pytest.mark.parametrize('kwargs', [{}, dict(init_cfg=None)], ids=['default', 'None'])
def test_default_init_cfg_initialises_like_the_releases(kwargs):
    # None is what a config writes to drop its base's Pretrained (the shapes quickstart).
    model = DSNet('tiny', **kwargs)
    convs = {name: param.clone() for name, param in model.named_parameters()
             if param.dim() == 4}
    model.init_weights()
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    weights = torch.cat([m.weight.flatten() for m in linears])
    assert weights.std().item() == pytest.approx(0.02, rel=0.05)
    assert weights.abs().max() < 0.2  # a normal of std 0.02 has nothing near its +-2 cut-off
    assert all(torch.all(m.bias == 0) for m in linears)
    for norm in (m for m in model.modules() if isinstance(m, nn.LayerNorm)):
        assert torch.all(norm.weight == 1) and torch.all(norm.bias == 0)
    # Convolutions keep PyTorch's initialisation, as in the releases.
    for name, param in model.named_parameters():
        if name in convs:
            assert torch.equal(param, convs[name]), name


@pytest.mark.parametrize('norm_cfg, norm_type', [
    (dict(type='BN'), nn.BatchNorm2d),
    (dict(type='mmpretrain.LN2d'), nn.LayerNorm),
])
def test_out_norm_cfg(norm_cfg, norm_type):
    model = DSNet('tiny', out_indices=(1, 3), out_norm_cfg=norm_cfg).eval()
    assert [isinstance(norm, norm_type) for norm in model.out_norms] == [False, True, False, True]
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 64, 64))
    assert [tuple(out.shape) for out in outs] == [(1, 128, 8, 8), (1, 512, 2, 2)]


def test_bf16_autocast_on_cpu():
    model = DSNet('tiny', out_indices=(0, 3)).eval()
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        outs = model(torch.rand(1, 3, 64, 96))
    assert [tuple(out.shape) for out in outs] == [(1, 64, 16, 24), (1, 512, 2, 3)]
    assert all(torch.isfinite(out).all() for out in outs)


def test_build_from_both_registries_after_import_mmdsnet(run_python):
    result = run_python(
        'import mmdsnet\n'
        'from mmdet.registry import MODELS as DET_MODELS\n'
        'from mmpretrain.registry import MODELS as PRETRAIN_MODELS\n'
        'for registry in (PRETRAIN_MODELS, DET_MODELS):\n'
        '    model = registry.build(dict(type="DSNet", arch="tiny", out_indices=(0, 1, 2, 3)))\n'
        '    print(type(model).__module__, type(model).__name__)\n')
    assert result.returncode == 0, result.stderr
    assert result.stdout.split('\n')[:2] == ['mmdsnet.models.backbones.dsnet DSNet'] * 2


@pytest.mark.parametrize('shape', [(3, 64, 64), (1, 1, 3, 64, 64), (1, 4, 64, 64),
                                   (1, 3, 31, 64), (1, 3, 64, 16)])
def test_bad_input_raises(shape):
    model = DSNet('tiny')
    with pytest.raises(ValueError, match=re.escape(str(shape))):
        model(torch.rand(shape))


def test_arch_errors():
    with pytest.raises(ValueError, match=r"'huge'.*\['base', 'small', 'tiny'\]"):
        DSNet('huge')
    with pytest.raises(ValueError, match=r"missing keys \['depths', 'num_heads'\]"):
        DSNet(dict(embed_dims=[64, 128, 320, 512]))
    with pytest.raises(ValueError, match=r"unknown keys \['qkv_bias'\]"):
        DSNet(dict(DSNet.arch_zoo['tiny'], qkv_bias=False))
    with pytest.raises(ValueError, match='stage 2: embed dim 320 .* 2 \\* num_heads = 12'):
        DSNet(dict(DSNet.arch_zoo['tiny'], num_heads=[1, 2, 6, 8]))
    with pytest.raises(ValueError, match='one value per stage'):
        DSNet(dict(DSNet.arch_zoo['tiny'], depths=[1, 1, 1]))
    with pytest.raises(ValueError, match='drop_path_schedule'):
        DSNet('tiny', drop_path_schedule='cosine')
    # A count copied from an mmdet config: the error says how the two counts map.
    with pytest.raises(ValueError, match=r"frozen_stages must be in \[-1, 3\].*MMDetection's "
                       r'ResNet and Swin count from 1, so their frozen_stages=k is k - 1 here'):
        DSNet('tiny', frozen_stages=4)
    with pytest.raises(ValueError, match='out_indices'):
        DSNet('tiny', out_indices=(4, ))


@pytest.mark.parametrize('alias, arch', [('t', 'tiny'), ('T', 'tiny'), ('Tiny', 'tiny'),
                                         ('s', 'small'), ('Small', 'small'), ('SMALL', 'small'),
                                         ('b', 'base'), ('Base', 'base')])
def test_arch_aliases_in_any_case(alias, arch):
    assert DSNet(alias).depths == DSNet.arch_zoo[arch]['depths']


@pytest.mark.parametrize('kwargs, name, expected', [
    (dict(out_indices='3'), 'out_indices', 'an int or a sequence of ints'),
    (dict(out_indices=(0, 1.5)), 'out_indices', 'an int or a sequence of ints'),
    (dict(out_indices=3.0), 'out_indices', 'an int or a sequence of ints'),
    (dict(arch=dict(DSNet.arch_zoo['tiny'], embed_dims=64)), "arch['embed_dims']",
     'a sequence of ints, one per stage'),
    (dict(arch=dict(DSNet.arch_zoo['tiny'], depths=[2, 2, 4, '1'])), "arch['depths']",
     'a sequence of ints, one per stage'),
    (dict(arch=dict(DSNet.arch_zoo['tiny'], mlp_ratio=[4, 4, 4, 4])), "arch['mlp_ratio']",
     'a number'),
    (dict(arch=dict(DSNet.arch_zoo['tiny'], global_downsample_ratios=8)),
     "arch['global_downsample_ratios']", 'a sequence of ints'),
    (dict(arch=3), 'arch', 'a str or a dict'),
    (dict(in_channels='3'), 'in_channels', 'an int'),
    (dict(frozen_stages=1.0), 'frozen_stages', 'an int'),
    (dict(norm_eval='yes'), 'norm_eval', 'a bool'),
    (dict(with_cp=1), 'with_cp', 'a bool'),
    (dict(drop_path_rate='0.1'), 'drop_path_rate', 'a float'),
    (dict(attn_drop_rate=None), 'attn_drop_rate', 'a float'),
    (dict(drop_path_schedule=1), 'drop_path_schedule', 'a str'),
    (dict(channels_last='False'), 'channels_last', 'a bool'),
    (dict(fused_attention=None), 'fused_attention', 'a bool'),
    (dict(out_norm_cfg='BN'), 'out_norm_cfg', 'a dict or None'),
])
def test_argument_of_wrong_type_is_named_with_its_type(kwargs, name, expected):
    with pytest.raises(TypeError, match=re.escape(f'DSNet {name} must be {expected}')):
        DSNet(**kwargs)


@pytest.mark.parametrize('kwargs, match', [
    (dict(drop_path_rate=1.), r'drop_path_rate must be in \[0, 1\)'),
    (dict(attn_drop_rate=-0.1), r'attn_drop_rate must be in \[0, 1\)'),
    (dict(arch=dict(DSNet.arch_zoo['tiny'], num_heads=[1, 2, 0, 8])),
     r"arch\['num_heads'\] entries must be positive"),
    (dict(arch=dict(embed_dims=[], depths=[], num_heads=[])), 'at least one stage'),
])
def test_argument_values_out_of_range(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DSNet(**kwargs)


def test_default_global_downsample_ratios_for_any_stage_count():
    # The releases' four stages: the global map at 1/32 of the image, stage 4 at 1/64.
    assert DSNet.default_global_downsample_ratios(4) == [8, 4, 2, 2]
    assert DSNet.default_global_downsample_ratios(2) == [8, 4]
    assert DSNet.default_global_downsample_ratios(5) == [8, 4, 2, 2, 2]
    model = DSNet(dict(embed_dims=[16, 32, 32, 64, 64], depths=[1] * 5, num_heads=[1] * 5),
                  out_indices=(0, 4)).eval()
    assert [stage.blocks[0].global_downsample_ratio for stage in model.stages] == [8, 4, 2, 2, 2]
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 64, 128))
    assert [tuple(out.shape) for out in outs] == [(1, 16, 16, 32), (1, 64, 1, 2)]


def test_single_image_training_batch_with_a_1x1_last_map_is_refused_with_the_fix():
    model = DSNet('tiny').train()
    with pytest.raises(ValueError, match=re.escape('(1, 3, 32, 63)') + '.*drop_last=True'):
        model(torch.rand(1, 3, 32, 63))
    # The cases where BatchNorm has more than one value per channel, or uses no batch statistics.
    model(torch.rand(1, 3, 32, 64))
    model(torch.rand(2, 3, 32, 32))
    DSNet('tiny', norm_eval=True).train()(torch.rand(1, 3, 32, 32))
    with torch.no_grad():
        model.eval()(torch.rand(1, 3, 32, 32))


def test_custom_arch_dict():
    arch = dict(embed_dims=[16, 32], depths=[1, 1], num_heads=[2, 4], mlp_ratio=2,
                global_downsample_ratios=[2, 1])
    model = DSNet(arch, out_indices=(0, 1)).eval()
    assert model.min_input_size == 8
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 16, 24))
    assert [tuple(out.shape) for out in outs] == [(1, 16, 4, 6), (1, 32, 2, 3)]
    assert model.stages[0].blocks[0].mlp.fc1.out_channels == 32


def test_max_global_tokens_is_the_published_function_where_no_map_exceeds_it():
    default = randomize_norm_stats(DSNet('tiny', out_indices=(0, 1, 2, 3))).eval()
    capped = DSNet('tiny', out_indices=(0, 1, 2, 3), max_global_tokens=49).eval()
    capped.load_state_dict(default.state_dict())  # same weights, strictly
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        for out, expected in zip(capped(x), default(x)):
            torch.testing.assert_close(out, expected, rtol=0, atol=0)


@pytest.mark.parametrize('cap, size', [(256, (200, 336)), (1024, (256, 512)), (3, (200, 336)),
                                       (1, (64, 64))])
def test_max_global_tokens_caps_the_grid_keeping_its_aspect(cap, size):
    block = DSNet('tiny', max_global_tokens=cap).stages[0].blocks[0]  # r = 8
    uncapped = (size[0] // 8, size[1] // 8)
    height, width = block.global_map_size(*size)
    assert 1 <= height * width <= cap < uncapped[0] * uncapped[1]
    if min(height, width) > 4:
        assert abs(width / height - uncapped[1] / uncapped[0]) < 0.15
    assert (height + 1) * (width + 1) > cap  # the largest such grid, up to rounding


def test_max_global_tokens_runs_at_dense_sizes_with_the_same_output_shapes():
    capped = DSNet('tiny', out_indices=(0, 1, 2, 3), max_global_tokens=8)
    default = DSNet('tiny', out_indices=(0, 1, 2, 3))
    x = torch.rand(1, 3, 160, 256)
    assert [o.shape for o in capped(x)] == [o.shape for o in default(x)]


@pytest.mark.parametrize('cap', [0, -5, 2.5, '64'])
def test_max_global_tokens_must_be_a_positive_int(cap):
    with pytest.raises(ValueError, match='max_global_tokens'):
        DSNet('tiny', max_global_tokens=cap)

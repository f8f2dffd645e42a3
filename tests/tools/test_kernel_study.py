"""tools/benchmarks/kernel_study.py: its variants compute the committed function, and a tiny run
writes one row per step and variant, its figures in their units and its ratios to Swin-T the
quotients of its times (no timing targets); tools/benchmarks/op_count.py counts what is
dispatched."""
import json
import os
import subprocess
import sys
import time

import pytest
import torch
from tool_scripts import load_tool

from mmdsnet.models import DSNet

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO_ROOT, 'tools', 'benchmarks', 'kernel_study.py')
# The variants that run on a CPU (the sdpa_* ones select CUDA kernels).
CPU_VARIANTS = ('cudnn_benchmark', 'depthwise_nchw', 'global_queries_explicit', 'adamw_fused')


@pytest.fixture(scope='module')
def kernel_study():
    return load_tool('kernel_study', 'benchmarks')


@pytest.mark.parametrize('variant', CPU_VARIANTS)
def test_variants_compute_the_committed_function(kernel_study, variant):
    torch.manual_seed(0)
    # 128 x 192 gives stage 1 a 32 x 48 local map and a 4 x 6 global one: the co-attention's
    # global queries are outnumbered 64 to 1, so global_queries_explicit takes its own path.
    model = DSNet('tiny', out_indices=(0, 1, 2, 3), attn_drop_rate=0., drop_path_rate=0.).train()
    images = torch.randn(2, 3, 128, 192, requires_grad=True)

    def outputs_and_input_grad():
        images.grad = None
        outputs = model(images)
        sum(out.square().mean() for out in outputs).backward()
        return [out.detach() for out in outputs] + [images.grad.clone()]

    expected = outputs_and_input_grad()
    with kernel_study.variants()[variant]():
        actual = outputs_and_input_grad()
    for want, got in zip(expected, actual):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_global_queries_explicit_takes_only_the_few_queries_direction(kernel_study, monkeypatch):
    calls = []
    original = kernel_study.dsnet_module.attention

    def recording(query, key, value, *args):
        calls.append((query.shape[-2], key.shape[-2]))
        return original(query, key, value, *args)

    monkeypatch.setattr(kernel_study.dsnet_module, 'attention', recording)
    model = DSNet('tiny', attn_drop_rate=0.).eval()
    with torch.no_grad(), kernel_study.variants()['global_queries_explicit']():
        model(torch.randn(1, 3, 128, 192))
    # What still reaches the fused path: self-attention and local queries, never global ones.
    assert calls and all(queries * kernel_study.FEW_QUERIES > keys for queries, keys in calls)


def test_tiny_run_writes_a_row_per_step_and_variant(tmp_path):
    out = tmp_path / 'study.json'
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, SCRIPT, '--device', 'cpu', '--dtype', 'fp32', '--arch', 'tiny',
         '--steps', 'dense', 'training', 'inference_deploy', '--batch', '2', '--train-batch',
         '2', '--dense-batch', '1', '--dense-size', '64', '96', '--rounds', '1', '--repeats', '1',
         '--variants', 'committed', 'adamw_fused', '--out', str(out)],
        check=True, cwd=REPO_ROOT)
    seconds = time.perf_counter() - start
    report = json.loads(out.read_text())
    assert {'device', 'torch', 'cpu_count', 'threads'} <= set(report['machine'])
    assert report['settings']['dense_size'] == [64, 96]
    assert set(report['results']) == {'dense', 'training', 'inference_deploy'}
    for step, rows in report['results'].items():
        # The dense step is also timed for mmdet's Swin-T backbone, and each row gets its ratio.
        peer = step == 'dense'
        assert set(rows) == {'committed', 'adamw_fused'} | ({'swin_tiny'} if peer else set())
        for row in rows.values():
            assert set(row) == {'ms', 'peak_gb'} | ({'vs_swin'} if peer else set())
            # Milliseconds, each within the run; no CUDA memory on the CPU.
            assert 0 < row['ms'] <= seconds * 1000 and row['peak_gb'] == 0
            if peer:
                # Swin-T's ms is rounded to 0.01: a relative error up to 0.005 / ms.
                swin_ms = rows['swin_tiny']['ms']
                ratio = row['ms'] / swin_ms
                assert abs(row['vs_swin'] - ratio) <= 5e-4 + ratio * 0.006 / swin_ms
    assert report['results']['dense']['swin_tiny']['vs_swin'] == 1


def test_unknown_variant_is_named(tmp_path):
    result = subprocess.run(
        [sys.executable, SCRIPT, '--device', 'cpu', '--variants', 'committed', 'bogus'],
        capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode != 0
    assert "unknown or unsupported variants ['bogus']" in result.stderr


def test_op_count_counts_each_dispatched_operator(tmp_path):
    op_count = load_tool('op_count', 'benchmarks')
    linear = torch.nn.Linear(4, 3)
    with op_count.OperatorCounter() as counter:
        linear(torch.randn(2, 4)).sum().backward()
    # One addmm forward; one sum for the loss and one for the bias gradient.
    assert counter.counts['addmm'] == 1 and counter.counts['sum'] == 2
    out = tmp_path / 'ops.json'
    rows = op_count.main(['--models', 'dsnet_tiny', '--size', '64', '64', '--top', '3', '--out',
                          str(out)])
    report = json.loads(out.read_text())
    assert report['results'] == rows
    assert report['size'] == [64, 64] and report['dtype'] == 'bf16'
    assert report['torch'] == torch.__version__
    row, = rows
    assert set(row) == {'model', 'operators', 'most_frequent', 'counts'}
    assert row['model'] == 'dsnet_tiny' and row['operators'] == sum(row['counts'].values())
    # The --top operators, with their counts: none of the others is dispatched more often.
    assert len(row['most_frequent']) == 3
    assert all(row['counts'][op] == count for op, count in row['most_frequent'].items())
    assert min(row['most_frequent'].values()) >= max(
        count for op, count in row['counts'].items() if op not in row['most_frequent'])
    # Every block's co-attention runs two attention calls and the global stream one, each with
    # its backward: 3 x 9 blocks of DSNet-T.
    if not hasattr(torch.ops.aten, '_scaled_dot_product_flash_attention_for_cpu'):
        pytest.skip(f'torch {torch.__version__} has no fused CPU attention kernel (torch >= 2.2 '
                    'has): its scaled_dot_product_attention runs as matrix products')
    assert rows[0]['counts']['_scaled_dot_product_flash_attention_for_cpu'] == 27

"""Smoke tests of tools/analysis/benchmark.py, resize_probe.py and conv_weight_layout.py at tiny
sizes: the JSON they write (fields, ratios consistent with the times), no timing targets."""
import inspect
import json
import os
import subprocess
import sys

import pytest
from tool_scripts import load_tool

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope='module')
def benchmark():
    return load_tool('benchmark', 'analysis')


@pytest.fixture
def worker_commands(monkeypatch):
    """The commands of the measuring processes started through subprocess.run."""
    commands = []
    run = subprocess.run

    def recording_run(command, *args, **kwargs):
        if isinstance(command, (list, tuple)) and '--worker' in command:
            commands.append(list(command))
        return run(command, *args, **kwargs)

    monkeypatch.setattr(subprocess, 'run', recording_run)
    return commands


def assert_isolated_rows(rows, models, time_key, reference, worker_commands):
    """One fresh process per model, memory figures, and ratios that are the rows' quotients."""
    assert [row['model'] for row in rows] == models
    assert len(worker_commands) == len(models)
    assert all(command[1].endswith('benchmark.py') for command in worker_commands)
    reference_row = rows[models.index(reference)]
    for row in rows:
        assert 'error' not in row, row
        assert row['memory'] == 'peak_rss_fresh_process'
        assert row[time_key] > 0 and row['params_m'] > 0
        assert 0 < row['mem_before_gb'] <= row['peak_gb']
        assert row['time_vs_swin'] == pytest.approx(row[time_key] / reference_row[time_key],
                                                    abs=1e-3)
        assert row['mem_vs_swin'] == pytest.approx(row['peak_gb'] / reference_row['peak_gb'],
                                                   abs=1e-3)
    assert reference_row['time_vs_swin'] == reference_row['mem_vs_swin'] == 1


def test_classification_with_releases_baseline_and_json(benchmark, tmp_path, capsys):
    out = tmp_path / 'bench.json'
    rows = benchmark.main([
        '--device', 'cpu', '--models', 'dsnet_tiny', 'dsnet_tiny_releases', '--what',
        'classification', '--batch', '2', '--train-batch', '2', '--size', '64', '--warmup', '0',
        '--repeats', '1', '--out', str(out)])

    ours, releases = rows
    assert ours['model'] == 'dsnet_tiny' and releases['model'] == 'dsnet_tiny_releases'
    # The same network: the releases' module has exactly DSNet-T's parameters.
    assert ours['params_m'] == releases['params_m'] == 10.534
    for row in rows:
        assert row['infer_img_s'] > 0 and row['train_img_s'] > 0
    for mode in ('infer', 'train'):
        assert ours[f'{mode}_vs_releases'] == pytest.approx(
            ours[f'{mode}_img_s'] / releases[f'{mode}_img_s'], abs=0.01)
        assert f'{mode}_vs_releases' not in releases
    report = json.loads(out.read_text())
    assert report['results'] == rows and report['machine']['device'] == 'cpu'
    assert report['settings']['size'] == 64
    assert 'dsnet_tiny_releases' in capsys.readouterr().out


def test_compile_both_measures_eager_and_compiled_rows_in_one_run(benchmark, tmp_path):
    """--compile: each model eager then compiled (here with aot_eager, which builds the graphs
    without inductor's C++), the compiled row with its first-call time and its speed-ups, which
    are the quotients of the two rows' times."""
    out = tmp_path / 'compiled.json'
    rows = benchmark.main([
        '--device', 'cpu', '--models', 'dsnet_tiny', '--what', 'classification', '--batch', '2',
        '--train-batch', '2', '--size', '64', '--warmup', '1', '--repeats', '2', '--compile',
        '--compile-backend', 'aot_eager', '--out', str(out)])

    eager, compiled = rows
    assert (eager['model'], eager['compiled']) == ('dsnet_tiny', False)
    assert (compiled['model'], compiled['compiled']) == ('dsnet_tiny', True)
    assert 'train_first_s' not in eager and 'train_ms_speedup' not in eager
    # The first call compiles: it takes longer than a step.
    assert compiled['infer_first_s'] * 1000 > compiled['infer_ms']
    assert compiled['train_first_s'] * 1000 > compiled['train_ms']
    for key in ('infer_ms', 'train_ms'):
        assert compiled[f'{key}_speedup'] == pytest.approx(eager[key] / compiled[key], abs=1e-3)
    report = json.loads(out.read_text())
    assert report['results'] == rows
    assert report['settings']['compile'] == 'both'
    assert report['settings']['compile_backend'] == 'aot_eager'


def test_compile_cache_times_a_cold_then_a_warm_first_step(benchmark, worker_commands):
    rows = benchmark.main(['--device', 'cpu', '--what', 'compile_cache', '--dense-models',
                           'dsnet_tiny', '--dense-size', '64', '96', '--warmup', '0',
                           '--repeats', '1', '--compile-backend', 'aot_eager'])

    row, = rows
    assert len(worker_commands) == 2  # two fresh processes
    assert row['model'] == 'dsnet_tiny' and row['input'] == '1x3x64x96'
    assert row['cold_first_step_s'] > 0 and row['warm_first_step_s'] > 0
    assert row['warm_vs_cold'] == pytest.approx(
        row['warm_first_step_s'] / row['cold_first_step_s'], abs=1e-3)
    assert row['step_ms'] > 0


def test_dense_backbones_in_fresh_processes_beside_swin(benchmark, tmp_path, worker_commands):
    out = tmp_path / 'dense.json'
    models = ['dsnet_tiny', 'swin_tiny']
    rows = benchmark.main(['--device', 'cpu', '--what', 'dense', '--dense-models', *models,
                           '--dense-size', '64', '96', '--warmup', '0', '--repeats', '1',
                           '--out', str(out)])

    assert_isolated_rows(rows, models, 'fwd_bwd_ms', 'swin_tiny', worker_commands)
    assert all(row['input'] == '1x3x64x96' for row in rows)  # --dense-batch: 1 on CPU
    # DSNet-T as in its Mask R-CNN config: no classifier head, a LayerNorm on each output.
    assert rows[0]['params_m'] == 10.023
    report = json.loads(out.read_text())
    assert report['results'] == rows and report['settings']['dense_batch'] == 1


def test_detector_steps_in_fresh_processes_beside_swin(benchmark, tmp_path, monkeypatch,
                                                       worker_commands):
    models = ['mask_rcnn_dsnet_tiny', 'mask_rcnn_swin_tiny']
    # From another directory: the repository's own configs are found from the script.
    monkeypatch.chdir(tmp_path)
    rows = benchmark.main(['--device', 'cpu', '--what', 'detector', '--det-models', *models,
                           '--det-size', '120', '150', '--warmup', '0', '--repeats', '1'])

    assert_isolated_rows(rows, models, 'step_ms', 'mask_rcnn_swin_tiny', worker_commands)
    assert all(row['input'] == '1x3x120x150' and row['padded'] == '128x160' for row in rows)


def test_flops_table_and_plot(benchmark, tmp_path, capsys):
    from mmengine.analysis import get_model_complexity_info

    from mmdsnet.models import DSNet

    plot, out = tmp_path / 'plots' / 'flops.png', tmp_path / 'flops.json'
    models = ['dsnet_tiny', 'dsnet_small', 'resnet50', 'swin_tiny', 'pvt_v2_b2']
    rows = benchmark.main(['--what', 'flops', '--flops-models', *models, '--flops-sizes',
                           '64x64', '64x128', '--flops-global-cap', '4', '--plot', str(plot),
                           '--out', str(out)])

    capped = 'max_global_tokens' in inspect.signature(DSNet.__init__).parameters
    assert [row['model'] for row in rows] == models + ['dsnet_small_cap4'] * capped
    for row in rows:
        assert 'uncounted_ops' not in row, row  # e.g. a fused attention the counter cannot see
        assert 0 < row['gflops_64x64'] < row['gflops_64x128']
    by_model = {row['model']: row for row in rows}
    # What get_model_complexity_info reports for DSNet as built (fused attention).
    dsnet = DSNet('tiny', out_indices=(0, 1, 2, 3)).eval()
    info = get_model_complexity_info(dsnet, input_shape=(3, 64, 64), show_table=False,
                                     show_arch=False)
    assert by_model['dsnet_tiny']['gflops_64x64'] == round(info['flops'] / 1e9, 3)
    if capped:
        # 64x64 has a 2x2 global grid in stage 1, within the cap; 64x128 has 2x4, above it.
        small, cap = by_model['dsnet_small'], by_model['dsnet_small_cap4']
        assert cap['gflops_64x64'] == small['gflops_64x64']
        assert cap['gflops_64x128'] < small['gflops_64x128']
    else:
        assert 'no dsnet_small_cap4 row' in capsys.readouterr().out
    with open(plot, 'rb') as file:
        assert file.read(8) == b'\x89PNG\r\n\x1a\n'
    report = json.loads(out.read_text())
    assert report['results'] == rows and report['settings']['plot'] == str(plot)


def test_resize_probe_rows_per_stage_and_direction(tmp_path):
    # Run as a user runs it, from another folder: it imports benchmark.py from its own.
    out = tmp_path / 'resize.json'
    result = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, 'tools', 'analysis', 'resize_probe.py'),
         '--device', 'cpu', '--batch', '2', '--size', '64', '--warmup', '0', '--repeats', '1',
         '--out', str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, 'PYTHONPATH': REPO_ROOT, 'OMP_NUM_THREADS': '1'})
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(out.read_text())['results']
    assert [(row['stage'], row['direction']) for row in rows] == [
        (stage, direction) for stage in (1, 2, 3, 4) for direction in ('down', 'up')]
    assert rows[0]['input'] == '2x32x16x16' and rows[1]['input'] == '2x32x2x2'
    assert all(row['max_abs_diff'] < 1e-5 and row['block_us'] > 0 for row in rows)


def test_conv_weight_layout_times_both_layouts(capsys):
    medians = load_tool('conv_weight_layout', 'analysis').main(
        ['--arch', 'tiny', '--batch', '2', '--size', '32', '--rounds', '2'])
    assert set(medians) == {'inference', 'training_step'}
    assert all(set(ms) == {'nchw', 'channels_last'} and min(ms.values()) > 0
               for ms in medians.values())
    assert 'training_step' in capsys.readouterr().out


def test_cpu_attention_times_both_variants_per_dropout_rate(tmp_path, capsys):
    out = tmp_path / 'attention.json'
    results = load_tool('cpu_attention', 'analysis').main(
        ['--arch', 'tiny', '--size', '64', '96', '--rounds', '2', '--dropout', '0', '0.1',
         '--out', str(out)])
    assert set(results) == {'0.0', '0.1'}
    for result in results.values():
        assert set(result['median_ms']) == {'kernels', 'sdpa'}
        assert all(len(times) == 2 and min(times) > 0 for times in result['ms'].values())
    assert json.loads(out.read_text())['results'] == results
    assert 'kernels faster' in capsys.readouterr().out

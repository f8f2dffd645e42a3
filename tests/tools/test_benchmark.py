"""Smoke tests of tools/benchmarks/benchmark.py, resize_probe.py and conv_weight_layout.py at tiny
sizes: the JSON they write (its command line and load averages, its fields, each figure in the
unit its name gives, ratios and throughputs consistent with the times in the same row), no timing
targets."""
import inspect
import json
import math
import os
import shlex
import subprocess
import sys
import time

import pytest
from tool_scripts import load_tool

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The smallest resident memory of a Python process that has imported torch, in GiB: a figure
# below it is not in GiB.
MIN_PROCESS_GB = 0.05
MACHINE_FIELDS = {'device', 'torch', 'python', 'cpu', 'cpu_count', 'threads'}
CLASSIFICATION_FIELDS = {'what', 'model', 'compiled', 'params_m', 'infer_batch', 'infer_img_s',
                         'infer_ms', 'infer_peak_gb', 'train_batch', 'train_img_s', 'train_ms',
                         'train_peak_gb'}
# The rows of a model measured in its own process (--what dense / detector / segmentor).
ISOLATED_FIELDS = {'what', 'model', 'compiled', 'input', 'params_m', 'time_vs_swin', 'memory',
                   'mem_before_gb', 'peak_gb', 'mem_vs_swin'}


@pytest.fixture(scope='module')
def benchmark():
    return load_tool('benchmark', 'benchmarks')


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


def run_benchmark(benchmark, tmp_path, *argv):
    """``benchmark.py argv --out ...``: its rows, the JSON report it wrote (checked: the command
    line, the rows, the machine with its load averages and the settings of this command line) and
    the seconds the run took."""
    out = tmp_path / 'benchmark.json'
    argv = [*argv, '--out', str(out)]
    start = time.perf_counter()
    rows = benchmark.main(argv)
    seconds = time.perf_counter() - start
    report = json.loads(out.read_text())
    assert report['results'] == rows
    assert report['command'] == shlex.join(['python', 'tools/benchmarks/benchmark.py', *argv])
    expected = {key: value for key, value in vars(benchmark.parse_args(argv)).items()
                if key not in ('out', 'worker')}
    assert MACHINE_FIELDS <= set(report['machine'])
    assert report['machine']['device'] == expected['device']
    for key in ('load_avg_start', 'load_avg_end'):  # uptime's 1-, 5- and 15-minute averages
        load = report['machine'][key]
        assert len(load) == 3 and all(0 <= value < 1000 for value in load), (key, load)
    assert set(report['settings']) == set(expected)
    # --what flops fills in the plot's default path.
    assert {key: value for key, value in report['settings'].items() if key != 'plot'} == {
        key: value for key, value in expected.items() if key != 'plot'}
    return rows, report, seconds


def assert_units(row, report, seconds):
    """Each figure of ``row`` in the unit its name gives: ``*_ms`` milliseconds and ``*_s``
    seconds, each within the run's ``seconds``; ``*_gb`` GiB of a process, between a bare
    interpreter's and the machine's memory; ``*_img_s`` the images of the batch beside it in
    its ``*_ms`` (both rounded)."""
    machine_gb = report['machine'].get('memory_gb', math.inf)
    for key, value in row.items():
        if key.endswith('_img_s'):
            mode = key[:-len('_img_s')]
            batch, ms = row[f'{mode}_batch'], row[f'{mode}_ms']
            # ms is rounded to 0.01 (a relative error up to 0.005 / ms), img/s to 0.1.
            expected = batch * 1000 / ms
            assert abs(value - expected) <= 0.05 + expected * 0.006 / ms, (key, row)
        elif key.endswith('_ms'):
            assert 0 < value <= seconds * 1000, (key, row)
        elif key.endswith('_s'):
            assert 0 < value <= seconds, (key, row)
        elif key.endswith('_gb') and value is not None:  # None: no CUDA memory on the CPU
            assert MIN_PROCESS_GB < value < machine_gb, (key, row)


def assert_isolated_rows(rows, report, seconds, models, time_key, reference, worker_commands):
    """One fresh process per model, memory figures, and ratios that are the rows' quotients."""
    assert [row['model'] for row in rows] == models
    assert len(worker_commands) == len(models)
    assert all(command[1].endswith(os.path.join('benchmarks', 'benchmark.py'))
               for command in worker_commands)
    reference_row = rows[models.index(reference)]
    for row in rows:
        assert 'error' not in row, row
        assert row['compiled'] is False and row['memory'] == 'peak_rss_fresh_process'
        assert_units(row, report, seconds)
        assert row['params_m'] > 0 and row['mem_before_gb'] <= row['peak_gb']
        assert row['time_vs_swin'] == pytest.approx(row[time_key] / reference_row[time_key],
                                                    abs=1e-3)
        assert row['mem_vs_swin'] == pytest.approx(row['peak_gb'] / reference_row['peak_gb'],
                                                   abs=1e-3)
    assert reference_row['time_vs_swin'] == reference_row['mem_vs_swin'] == 1


def test_classification_row_and_json(benchmark, tmp_path, capsys):
    # Different batches for inference and training, so that each throughput must use its own.
    rows, report, seconds = run_benchmark(
        benchmark, tmp_path, '--device', 'cpu', '--models', 'dsnet_tiny', '--what',
        'classification', '--batch', '2', '--train-batch', '3', '--size', '64', '--warmup', '0',
        '--repeats', '1')

    row, = rows
    assert set(row) == CLASSIFICATION_FIELDS
    assert (row['what'], row['model'], row['compiled']) == ('classification', 'dsnet_tiny', False)
    assert row['params_m'] == 10.534  # DSNet-T with its 1000-class head
    assert (row['infer_batch'], row['train_batch']) == (2, 3)
    assert row['infer_peak_gb'] is None and row['train_peak_gb'] is None  # CUDA memory only
    assert_units(row, report, seconds)
    assert report['settings']['size'] == 64
    # Printed as soon as measured, for a run that a time limit cuts short.
    measured = [line for line in capsys.readouterr().out.splitlines()
                if line.startswith('measured: ')]
    assert [json.loads(line[len('measured: '):]) for line in measured] == [row]


def test_compile_both_measures_eager_and_compiled_rows_in_one_run(benchmark, tmp_path):
    """--compile: each model eager then compiled (here with aot_eager, which builds the graphs
    without inductor's C++), the compiled row with its first-call time and its speed-ups, which
    are the quotients of the two rows' times."""
    rows, report, seconds = run_benchmark(
        benchmark, tmp_path, '--device', 'cpu', '--models', 'dsnet_tiny', '--what',
        'classification', '--batch', '2', '--train-batch', '2', '--size', '64', '--warmup', '1',
        '--repeats', '2', '--compile', '--compile-backend', 'aot_eager')

    eager, compiled = rows
    assert (eager['model'], eager['compiled']) == ('dsnet_tiny', False)
    assert (compiled['model'], compiled['compiled']) == ('dsnet_tiny', True)
    assert set(eager) == CLASSIFICATION_FIELDS
    assert set(compiled) == CLASSIFICATION_FIELDS | {
        'infer_first_s', 'train_first_s', 'infer_ms_speedup', 'train_ms_speedup'}
    for row in rows:
        assert_units(row, report, seconds)
    # The first call compiles: it takes longer than a step.
    assert compiled['infer_first_s'] * 1000 > compiled['infer_ms']
    assert compiled['train_first_s'] * 1000 > compiled['train_ms']
    for key in ('infer_ms', 'train_ms'):
        assert compiled[f'{key}_speedup'] == pytest.approx(eager[key] / compiled[key], abs=1e-3)
    assert report['settings']['compile'] == 'both'
    assert report['settings']['compile_backend'] == 'aot_eager'


def test_skip_infer_measures_and_compiles_the_training_step_alone(benchmark, tmp_path):
    rows, report, seconds = run_benchmark(
        benchmark, tmp_path, '--device', 'cpu', '--models', 'dsnet_tiny', '--what',
        'classification', '--train-batch', '2', '--size', '64', '--warmup', '0', '--repeats',
        '1', '--skip-infer', '--compile', '--compile-backend', 'aot_eager')

    eager, compiled = rows
    training_fields = {key for key in CLASSIFICATION_FIELDS if not key.startswith('infer_')}
    assert set(eager) == training_fields
    assert set(compiled) == training_fields | {'train_first_s', 'train_ms_speedup'}
    for row in rows:
        assert_units(row, report, seconds)
    with pytest.raises(SystemExit):  # one or the other
        benchmark.parse_args(['--skip-infer', '--skip-train'])


def test_compile_cache_times_a_cold_then_a_warm_first_step(benchmark, tmp_path,
                                                           worker_commands):
    rows, report, seconds = run_benchmark(
        benchmark, tmp_path, '--device', 'cpu', '--what', 'compile_cache', '--dense-models',
        'dsnet_tiny', '--dense-size', '64', '96', '--warmup', '0', '--repeats', '1',
        '--compile-backend', 'aot_eager')

    row, = rows
    assert len(worker_commands) == 2  # two fresh processes
    assert set(row) == {'what', 'model', 'input', 'cold_first_step_s', 'warm_first_step_s',
                        'step_ms', 'warm_vs_cold'}
    assert row['model'] == 'dsnet_tiny' and row['input'] == '1x3x64x96'
    assert_units(row, report, seconds)
    # Both first steps compile (from an empty cache, then from the filled one): each takes
    # longer than the step that follows.
    assert row['warm_first_step_s'] * 1000 > row['step_ms']
    assert row['warm_vs_cold'] == pytest.approx(
        row['warm_first_step_s'] / row['cold_first_step_s'], abs=1e-3)


def test_dense_backbones_in_fresh_processes_beside_swin(benchmark, tmp_path, worker_commands):
    models = ['dsnet_tiny', 'swin_tiny']
    rows, report, seconds = run_benchmark(
        benchmark, tmp_path, '--device', 'cpu', '--what', 'dense', '--dense-models', *models,
        '--dense-size', '64', '96', '--warmup', '0', '--repeats', '1')

    assert_isolated_rows(rows, report, seconds, models, 'fwd_bwd_ms', 'swin_tiny',
                         worker_commands)
    assert all(set(row) == ISOLATED_FIELDS | {'fwd_bwd_ms'} for row in rows)
    assert all(row['input'] == '1x3x64x96' for row in rows)  # --dense-batch: 1 on CPU
    # DSNet-T as in its Mask R-CNN config: no classifier head, a LayerNorm on each output.
    assert rows[0]['params_m'] == 10.023
    assert report['settings']['dense_batch'] == 1


def test_detector_steps_in_fresh_processes_beside_swin(benchmark, tmp_path, monkeypatch,
                                                       worker_commands):
    models = ['mask_rcnn_dsnet_tiny', 'mask_rcnn_swin_tiny']
    # From another directory: the repository's own configs are found from the script.
    monkeypatch.chdir(tmp_path)
    rows, report, seconds = run_benchmark(
        benchmark, tmp_path, '--device', 'cpu', '--what', 'detector', '--det-models', *models,
        '--det-size', '120', '150', '--warmup', '0', '--repeats', '1')

    assert_isolated_rows(rows, report, seconds, models, 'step_ms', 'mask_rcnn_swin_tiny',
                         worker_commands)
    assert all(set(row) == ISOLATED_FIELDS | {'step_ms', 'padded'} for row in rows)
    assert all(row['input'] == '1x3x120x150' and row['padded'] == '128x160' for row in rows)


def test_segmentor_steps_in_fresh_processes_beside_swin(benchmark, tmp_path, monkeypatch,
                                                        worker_commands):
    """UperNet and Semantic FPN with DSNet-T (the tiny configs) beside MMSegmentation's Swin-T
    UperNet, each training step at 2 x 64 x 64 in its own process."""
    models = ['upernet_dsnet_tiny', 'fpn_dsnet_tiny', 'upernet_swin_tiny']
    monkeypatch.chdir(tmp_path)  # the repository's own configs are found from the script
    # One thread in each measuring process: two on two cores stall whenever anything else runs.
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    rows, report, seconds = run_benchmark(
        benchmark, tmp_path, '--device', 'cpu', '--what', 'segmentor', '--seg-models', *models,
        '--seg-size', '64', '64', '--warmup', '0', '--repeats', '1')

    assert_isolated_rows(rows, report, seconds, models, 'step_ms', 'upernet_swin_tiny',
                         worker_commands)
    assert all(set(row) == ISOLATED_FIELDS | {'step_ms'} for row in rows)
    # --seg-batch: 2 by default; not padded to the configs' 512 x 512 crop.
    assert all(row['input'] == '2x3x64x64' for row in rows)
    upernet, fpn, swin = (row['params_m'] for row in rows)
    assert fpn < upernet < swin  # the Semantic FPN head is far lighter than UperNet's
    assert report['settings']['seg_batch'] == 2


def test_rounds_take_turns_and_keep_each_models_median_round(benchmark, monkeypatch):
    """--rounds 3: the models measured in turn (A, B, A, B, A, B), each keeping the row of its
    median round, with every round's time; the ratios from those rows."""
    times = {'upernet_dsnet_small': [30., 10., 20.], 'upernet_swin_tiny': [25., 15., 35.]}
    calls = []

    def fake_run_in_child(what, name, args, compiled):
        calls.append(name)
        step_ms = times[name][calls.count(name) - 1]
        return dict(what=what, model=name, compiled=compiled, step_ms=step_ms,
                    peak_gb=step_ms / 10)

    monkeypatch.setattr(benchmark, 'run_in_child', fake_run_in_child)
    args = benchmark.parse_args(['--device', 'cpu', '--what', 'segmentor', '--rounds', '3'])
    dsnet, swin = benchmark.bench_isolated('segmentor', list(times), args)

    assert calls == list(times) * 3
    assert (dsnet['step_ms'], dsnet['peak_gb'], dsnet['step_ms_rounds']) == (20, 2, [30, 10, 20])
    assert (swin['step_ms'], swin['peak_gb'], swin['step_ms_rounds']) == (25, 2.5, [25, 15, 35])
    assert (dsnet['time_vs_swin'], dsnet['mem_vs_swin']) == (0.8, 0.8)


def test_flops_table_and_plot(benchmark, tmp_path, capsys):
    from mmengine.analysis import get_model_complexity_info

    from mmdsnet.models import DSNet

    plot = tmp_path / 'plots' / 'flops.png'
    models = ['dsnet_tiny', 'dsnet_small', 'resnet50', 'swin_tiny', 'pvt_v2_b2']
    rows, report, seconds = run_benchmark(
        benchmark, tmp_path, '--what', 'flops', '--flops-models', *models, '--flops-sizes',
        '64x64', '64x128', '--flops-global-cap', '4', '--plot', str(plot))

    capped = 'max_global_tokens' in inspect.signature(DSNet.__init__).parameters
    assert [row['model'] for row in rows] == models + ['dsnet_small_cap4'] * capped
    for row in rows:
        # No uncounted_ops: e.g. a fused attention the counter cannot see.
        assert set(row) == {'what', 'model', 'params_m', 'gflops_64x64', 'gflops_64x128',
                            'count_s'}, row
        assert_units(row, report, seconds)
        assert 0 < row['gflops_64x64'] < row['gflops_64x128']
    by_model = {row['model']: row for row in rows}
    # What get_model_complexity_info reports for DSNet as built (fused attention), in GFLOPs.
    dsnet = DSNet('tiny', out_indices=(0, 1, 2, 3)).eval()
    info = get_model_complexity_info(dsnet, input_shape=(3, 64, 64), show_table=False,
                                     show_arch=False)
    assert by_model['dsnet_tiny']['gflops_64x64'] == round(info['flops'] / 1e9, 3)
    assert by_model['dsnet_tiny']['params_m'] == 10.023  # as in its Mask R-CNN config
    if capped:
        # 64x64 has a 2x2 global grid in stage 1, within the cap; 64x128 has 2x4, above it.
        small, cap = by_model['dsnet_small'], by_model['dsnet_small_cap4']
        assert cap['gflops_64x64'] == small['gflops_64x64']
        assert cap['gflops_64x128'] < small['gflops_64x128']
    else:
        assert 'no dsnet_small_cap4 row' in capsys.readouterr().out
    with open(plot, 'rb') as file:
        assert file.read(8) == b'\x89PNG\r\n\x1a\n'
    assert report['settings']['plot'] == str(plot)


def test_resize_probe_rows_per_stage_and_direction(tmp_path):
    # Run as a user runs it, from another folder: it imports benchmark.py from its own.
    out = tmp_path / 'resize.json'
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, 'tools', 'benchmarks', 'resize_probe.py'),
         '--device', 'cpu', '--batch', '2', '--size', '64', '--warmup', '0', '--repeats', '1',
         '--out', str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, 'PYTHONPATH': REPO_ROOT, 'OMP_NUM_THREADS': '1'})
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert MACHINE_FIELDS <= set(report['machine'])
    assert (report['settings']['batch'], report['settings']['size']) == (2, 64)
    rows = report['results']
    assert [(row['stage'], row['direction']) for row in rows] == [
        (stage, direction) for stage in (1, 2, 3, 4) for direction in ('down', 'up')]
    assert rows[0]['input'] == '2x32x16x16' and rows[1]['input'] == '2x32x2x2'
    for row in rows:
        assert set(row) == {'what', 'stage', 'direction', 'input', 'releases_us', 'block_us',
                            'max_abs_diff'}
        assert row['max_abs_diff'] < 1e-5
        # Microseconds: each resize within the run.
        assert 0 < row['releases_us'] <= seconds * 1e6 and 0 < row['block_us'] <= seconds * 1e6


def test_conv_weight_layout_times_both_layouts(capsys):
    start = time.perf_counter()
    medians = load_tool('conv_weight_layout', 'benchmarks').main(
        ['--arch', 'tiny', '--batch', '2', '--size', '32', '--rounds', '2'])
    seconds = time.perf_counter() - start
    assert set(medians) == {'inference', 'training_step'}
    for ms in medians.values():
        assert set(ms) == {'nchw', 'channels_last'}
        # Milliseconds: each step within the run.
        assert all(0 < value <= seconds * 1000 for value in ms.values())
    assert 'training_step' in capsys.readouterr().out

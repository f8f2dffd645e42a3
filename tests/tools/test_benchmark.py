"""Smoke tests of tools/analysis/benchmark.py and conv_weight_layout.py at tiny sizes (no
timing asserts)."""
import importlib.util
import json
import os

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_analysis_tool(name):
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(REPO_ROOT, 'tools', 'analysis', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def benchmark():
    return load_analysis_tool('benchmark')


def test_classification_and_dense_rows_and_json(benchmark, tmp_path, capsys):
    out = tmp_path / 'bench.json'
    rows = benchmark.main([
        '--device', 'cpu', '--models', 'dsnet_tiny', '--what', 'classification', 'dense',
        '--batch', '2', '--train-batch', '2', '--size', '64', '--dense-batch', '1',
        '--dense-size', '64', '96', '--warmup', '0', '--repeats', '1', '--out', str(out)])

    classification, dense = rows
    assert classification['model'] == 'dsnet_tiny' and classification['params_m'] == 10.534
    assert classification['infer_img_s'] > 0 and classification['train_img_s'] > 0
    assert dense['input'] == '1x3x64x96' and dense['fwd_bwd_ms'] > 0
    report = json.loads(out.read_text())
    assert report['results'] == rows and report['machine']['device'] == 'cpu'
    assert report['settings']['size'] == 64
    assert 'dsnet_tiny' in capsys.readouterr().out


def test_detector_step_beside_mmdet_configs(benchmark, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    rows = benchmark.main(['--device', 'cpu', '--what', 'detector', '--det-size', '128', '160',
                           '--warmup', '0', '--repeats', '1'])
    assert [row['model'] for row in rows] == list(benchmark.DETECTOR_CONFIGS)
    assert all(row['step_ms'] > 0 for row in rows)


def test_resize_rows_per_stage_and_direction(benchmark):
    rows = benchmark.main(['--device', 'cpu', '--what', 'resize', '--batch', '2', '--size', '64',
                           '--warmup', '0', '--repeats', '1'])
    assert [(row['stage'], row['direction']) for row in rows] == [
        (stage, direction) for stage in (1, 2, 3, 4) for direction in ('down', 'up')]
    assert rows[0]['input'] == '2x32x16x16' and rows[1]['input'] == '2x32x2x2'
    assert all(row['max_abs_diff'] < 1e-5 and row['block_us'] > 0 for row in rows)


def test_conv_weight_layout_times_both_layouts(capsys):
    medians = load_analysis_tool('conv_weight_layout').main(
        ['--arch', 'tiny', '--batch', '2', '--size', '32', '--rounds', '2'])
    assert set(medians) == {'inference', 'training_step'}
    assert all(set(ms) == {'nchw', 'channels_last'} and min(ms.values()) > 0
               for ms in medians.values())
    assert 'training_step' in capsys.readouterr().out

"""tools/analysis/plot_benchmarks.py on the committed JSON under docs/benchmarks/: the PNGs it
writes, and that what each figure draws is what the JSON and the metafiles hold."""
import json

import pytest
from tool_scripts import REPO_ROOT, load_tool

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
BENCHMARKS = REPO_ROOT / 'docs' / 'benchmarks'


@pytest.fixture(scope='module')
def plot_benchmarks():
    return load_tool('plot_benchmarks', 'analysis')


def rows(name):
    """The results of ``docs/benchmarks/<name>``, by model."""
    return {row['model']: row for row in json.loads((BENCHMARKS / name).read_text())['results']}


def test_writes_every_figure(plot_benchmarks, tmp_path, capsys):
    paths = plot_benchmarks.main(['--out', str(tmp_path / 'figures')])

    names = ['top1_vs_throughput.png', 'ratio_to_swin.png', 'flops_vs_size.png',
             'dense_vs_size.png']
    assert paths == [str(tmp_path / 'figures' / name) for name in names]
    for path in paths:
        with open(path, 'rb') as file:
            data = file.read()
        assert data[:8] == PNG_SIGNATURE
        assert len(data) > 30_000
    assert capsys.readouterr().out.splitlines() == [f'saved {path}' for path in paths]


def test_top1_against_throughput_draws_the_json_and_the_metafiles(plot_benchmarks):
    classification = rows('h200_run1/classification.json')

    figure, series = plot_benchmarks.draw_top1_vs_throughput(
        plot_benchmarks.load('h200_run1/classification.json'))

    top1 = {'DSNet-T': 79.2, 'DSNet-S': 82.0, 'DSNet-B': 81.8, 'ResNet-50': 76.55,
            'Swin-T': 81.18, 'ConvNeXt-T': 82.14, 'DeiT-S': 80.69}
    models = {'DSNet-T': 'dsnet_tiny', 'DSNet-S': 'dsnet_small', 'DSNet-B': 'dsnet_base',
              'ResNet-50': 'resnet50', 'Swin-T': 'swin_tiny_patch4_window7_224',
              'ConvNeXt-T': 'convnext_tiny', 'DeiT-S': 'deit_small_patch16_224'}
    assert series == {name: (classification[model]['infer_img_s'],
                             classification[model]['train_img_s'], top1[name])
                      for name, model in models.items()}
    # PVT-v2-b2 was measured but MMPretrain publishes no top-1 for it: named in the footnote.
    assert 'pvt_v2_b2' in classification
    footnote = figure.texts[-1].get_text()
    assert 'PVT-v2-b2' in footnote and 'NVIDIA H200' in footnote and '2026-11-25' in footnote


def test_ratios_to_swin_are_computed_from_the_measurements(plot_benchmarks):
    files = ('h200_run1/classification.json', 'h200_run1/dense_bf16.json',
             'h200_run1/detector.json')

    _, panels = plot_benchmarks.draw_ratio_to_swin(*map(plot_benchmarks.load, files))

    classification, dense, detector = map(rows, files)
    inference, training, dense_time, dense_memory, det_time, det_memory = panels.values()
    swin = classification['swin_tiny_patch4_window7_224']
    assert inference['DSNet-S'] == classification['dsnet_small']['infer_img_s'] / swin[
        'infer_img_s']
    assert training['DeiT-S'] == classification['deit_small_patch16_224']['train_img_s'] / swin[
        'train_img_s']
    assert 'DSNet-S, releases\' form' not in inference and len(inference) == 8
    # Where the JSON has its own rounded ratios, ours agree with them.
    for ratios, results, time_key in ((dense_time, dense, 'fwd_bwd_ms'),
                                      (det_time, detector, 'step_ms')):
        reference = next(row for model, row in results.items() if model.endswith('swin_tiny'))
        for model, row in results.items():
            if model == 'dsnet_small_releases':
                continue
            name = plot_benchmarks.label(model)
            assert ratios[name] == row[time_key] / reference[time_key]
            assert ratios[name] == pytest.approx(row['time_vs_swin'], abs=1e-3)
            memory = dense_memory if results is dense else det_memory
            assert memory[name] == pytest.approx(row['mem_vs_swin'], abs=1e-3)
    assert set(dense_time) == {'DSNet-T', 'DSNet-S', 'ResNet-50', 'Swin-T', 'PVT-v2-b2'}


def test_flops_lines_are_the_json_counts(plot_benchmarks):
    flops = rows('flops_cpu.json')

    _, series = plot_benchmarks.draw_flops_vs_size(plot_benchmarks.load('flops_cpu.json'))

    sizes = ('224x224', '512x512', '800x1344', '1024x2048')
    assert series == {plot_benchmarks.label(model): [row[f'gflops_{size}'] for size in sizes]
                      for model, row in flops.items()}
    assert len(series) == 7


def test_dense_lines_are_the_json_measurements(plot_benchmarks):
    files = {size: plot_benchmarks.load(name)
             for size, name in plot_benchmarks.DENSE_SIZES.items()}

    _, series = plot_benchmarks.draw_dense_vs_size(files)

    for size, data in files.items():
        assert data['settings']['dense_size'] == [int(side) for side in size.split('x')]
    for model in ('dsnet_tiny', 'dsnet_small', 'resnet50', 'swin_tiny', 'pvt_v2_b2'):
        measured = [rows(name)[model] for name in plot_benchmarks.DENSE_SIZES.values()]
        name = plot_benchmarks.label(model)
        assert series['memory_gb'][name] == [row['peak_gb'] - row['mem_before_gb']
                                             for row in measured]
        assert series['seconds'][name] == [row['fwd_bwd_ms'] / 1000 for row in measured]


def test_spread_keeps_labels_apart_in_order(plot_benchmarks):
    assert plot_benchmarks.spread([2.0, 1.0, 1.01, 3.0], 0.1) == [2.0, 1.0, 1.1, 3.0]
    assert plot_benchmarks.spread([1.0, 1.0, 1.05], 0.1) == pytest.approx([1.0, 1.1, 1.2])

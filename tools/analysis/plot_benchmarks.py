"""Draw the measured benchmarks under ``docs/benchmarks/`` as PNGs; measures nothing.

    python tools/analysis/plot_benchmarks.py [--out docs/benchmarks/figures]

Writes four figures, each from the JSON that ``tools/benchmarks/benchmark.py`` wrote:

- ``top1_vs_throughput.png``: published ImageNet-1k top-1 against the GPU inference and training
  throughput of H200 run 1 (``h200_run1/classification.json``, the latest run that measured
  every peer). Top-1 for DSNet is PaddleClas' (``configs/metafile.yml``), for the peers that of
  the MMPretrain metafiles installed with ``mmpretrain``; a model without a published top-1
  there (PVT-v2-b2) is left out and named in the footnote.
- ``ratio_to_swin.png``: inference and training throughput, dense forward + backward time and
  peak memory and the Mask R-CNN step's time and peak memory of H200 run 1, each divided by
  Swin-T's in the same file.
- ``flops_vs_size.png``: backbone GFLOPs against input size (``flops_cpu.json``), every line
  with its own colour and marker and a label at its end, DSNet's thin over the peers' wide dotted
  ones (DSNet-S's runs beside PVT-v2-b2's).
- ``dense_vs_size.png``: the memory and the time of a backbone's forward + backward against
  input size, on the CPU (``cpu/dense_sizes/dense_<size>.json``, a benchmark run per size).

The JSON records the machine but not the date; ``DATES`` holds each file's date as
``docs/benchmarks.md`` gives it, else that of the commit that added the file. The reference
implementation of the releases' form (``dsnet_small_releases``) is left out of the figures: it
has the weights of DSNet-S.
"""
import argparse
import importlib.util
import json
import math
import os
import os.path as osp
from typing import Dict, List, Tuple

import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BENCHMARKS = osp.join(REPO_ROOT, 'docs', 'benchmarks')
CLASSIFICATION = 'h200_run1/classification.json'
DENSE = 'h200_run1/dense_bf16.json'
DETECTOR = 'h200_run1/detector.json'
FLOPS = 'flops_cpu.json'
DENSE_SIZES = {size: f'cpu/dense_sizes/dense_{size}.json'
               for size in ('224x224', '512x512', '800x1344', '1024x2048')}
# The measurement dates, which the JSON does not record: docs/benchmarks.md's "GPU: one NVIDIA
# H200" section for run 1; the FLOP counts (which do not depend on the machine) are undated
# there, so the date of the commit that added them.
DATES = {
    CLASSIFICATION: '2026-11-25',
    DENSE: '2026-11-25',
    DETECTOR: '2026-11-25',
    FLOPS: 'committed 2026-11-26',
    **{name: '2026-12-04' for name in DENSE_SIZES.values()},
}
LEFT_OUT = {'dsnet_small_releases'}
LABELS = {
    'dsnet_tiny': 'DSNet-T',
    'dsnet_small': 'DSNet-S',
    'dsnet_base': 'DSNet-B',
    'dsnet_small_cap512': 'DSNet-S, max_global_tokens=512',
    'dsnet_tiny_releases': "DSNet-T, releases' form",
    'dsnet_small_releases': "DSNet-S, releases' form",
    'resnet50': 'ResNet-50',
    'r50': 'ResNet-50',
    'swin_tiny': 'Swin-T',
    'swin_tiny_patch4_window7_224': 'Swin-T',
    'pvt_v2_b2': 'PVT-v2-b2',
    'convnext_tiny': 'ConvNeXt-T',
    'upernet_dsnet_small': 'UperNet DSNet-S',
    'upernet_swin_tiny': 'UperNet Swin-T',
    'fpn_dsnet_small': 'Semantic FPN DSNet-S',
    'deit_small_patch16_224': 'DeiT-S',
}
# Where each model's published top-1 is: a metafile (this repository's, or the installed
# mmpretrain's under .mim/configs/) and the name of its entry.
TOP1_SOURCES = {
    'dsnet_tiny': ('configs/metafile.yml', 'dsnet-tiny_3rdparty_in1k'),
    'dsnet_small': ('configs/metafile.yml', 'dsnet-small_3rdparty_in1k'),
    'dsnet_base': ('configs/metafile.yml', 'dsnet-base_3rdparty_in1k'),
    'resnet50': ('mmpretrain:resnet/metafile.yml', 'resnet50_8xb32_in1k'),
    'swin_tiny_patch4_window7_224': ('mmpretrain:swin_transformer/metafile.yml',
                                     'swin-tiny_16xb64_in1k'),
    'convnext_tiny': ('mmpretrain:convnext/metafile.yml', 'convnext-tiny_32xb128_in1k'),
    'deit_small_patch16_224': ('mmpretrain:deit/metafile.yml', 'deit-small_4xb256_in1k'),
}
MARKERS = 'osD^vP*X'


def label(model: str) -> str:
    """The display name of a model of the JSON (a detector's is that of its backbone)."""
    return LABELS[model.replace('mask_rcnn_', '', 1)]


def load(name: str) -> dict:
    """The JSON ``docs/benchmarks/<name>``."""
    with open(osp.join(BENCHMARKS, name)) as file:
        return json.load(file)


def machine_name(machine: dict) -> str:
    """The GPU, else the CPU (and its cores, where recorded), of a JSON's ``machine``."""
    if machine.get('gpu'):
        return f"one {machine['gpu']}"
    cores = f", {machine['cpu_count']} cores" if 'cpu_count' in machine else ''
    return f"{machine['cpu']} CPU{cores}"


def source_line(name: str, data: dict) -> str:
    """Which file, machine and date a figure's numbers come from."""
    machine = data['machine']
    return (f"docs/benchmarks/{name}: {machine_name(machine)}, torch {machine['torch']}, "
            f"{DATES[name]}")


def metafile_path(source: str) -> str:
    """A metafile's path: ``mmpretrain:`` ones are in the installed package's configs."""
    if source.startswith('mmpretrain:'):
        package = importlib.util.find_spec('mmpretrain').submodule_search_locations[0]
        return osp.join(package, '.mim', 'configs', source.split(':', 1)[1])
    return osp.join(REPO_ROOT, source)


def published_top1(model: str) -> float:
    """The ImageNet-1k top-1 of ``model``'s metafile entry (``TOP1_SOURCES``)."""
    source, name = TOP1_SOURCES[model]
    with open(metafile_path(source)) as file:
        entries = yaml.safe_load(file)['Models']
    entry = next(entry for entry in entries if entry['Name'] == name)
    return next(result['Metrics']['Top 1 Accuracy'] for result in entry['Results']
                if result['Dataset'] == 'ImageNet-1k')


def draw_top1_vs_throughput(data: dict) -> Tuple[Figure, Dict[str, Tuple[float, float, float]]]:
    """Top-1 against inference and training img/s, a labelled point per model; returns the
    figure and, per label, the (inference img/s, training img/s, top-1) drawn."""
    series, missing = {}, []
    for row in data['results']:
        if row['model'] in LEFT_OUT:
            continue
        if row['model'] not in TOP1_SOURCES:
            missing.append(label(row['model']))
            continue
        series[label(row['model'])] = (row['infer_img_s'], row['train_img_s'],
                                       published_top1(row['model']))
    settings = data['settings']
    figure = Figure(figsize=(12, 5.4))
    axes = figure.subplots(1, 2, sharey=True)
    panels = ((0, f"inference, batch {settings['batch']}"),
              (1, f"training step (AdamW), batch {settings['train_batch']}"))
    for (index, title), ax in zip(panels, axes):
        for number, (name, values) in enumerate(series.items()):
            dsnet = name.startswith('DSNet')
            ax.scatter(values[index], values[2], s=70, marker=MARKERS[number % len(MARKERS)],
                       color='C3' if dsnet else 'C0', zorder=3)
            # DSNet's labels below their points and the peers' above: DSNet-S and ConvNeXt-T
            # are close in both panels.
            ax.annotate(name, (values[index], values[2]), textcoords='offset points',
                        xytext=(0, -16 if dsnet else 9), ha='center', fontsize=9,
                        fontweight='bold' if dsnet else 'normal')
        ax.set_xscale('log')
        ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        ax.xaxis.set_major_formatter(StrMethodFormatter('{x:,.0f}'))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f'{title}: images / s (log scale)')
        ax.set_title(title)
        ax.grid(True, which='both', alpha=0.3)
        ax.margins(x=0.15, y=0.1)
    axes[0].set_ylabel('ImageNet-1k top-1 (%), published')
    figure.suptitle(f"Top-1 against measured throughput: {settings['dtype']} autocast, "
                    f"{settings['size']} x {settings['size']}")
    notes = [source_line(CLASSIFICATION, data),
             'Top-1: DSNet from PaddleClas (configs/metafile.yml), peers from the MMPretrain '
             'metafiles; throughput measured with timm\'s peers.']
    if missing:
        notes.append(f"Not drawn, no MMPretrain metafile top-1: {', '.join(missing)}.")
    figure.text(0.01, 0.01, '\n'.join(notes), fontsize=8, va='bottom')
    figure.subplots_adjust(left=0.06, right=0.98, bottom=0.22, top=0.88, wspace=0.05)
    return figure, series


def ratios_to_swin(data: dict, key: str, left_out=LEFT_OUT) -> Dict[str, float]:
    """``key`` of every model of ``data`` but those ``left_out`` divided by Swin-T's, by
    label."""
    rows = {label(row['model']): row for row in data['results'] if row['model'] not in left_out}
    reference = rows['Swin-T'][key]
    return {name: row[key] / reference for name, row in rows.items()}


def draw_ratio_to_swin(classification: dict, dense: dict,
                       detector: dict) -> Tuple[Figure, Dict[str, Dict[str, float]]]:
    """A bar chart per measurement of H200 run 1, each model's figure divided by Swin-T's in the
    same file; returns the figure and the ratios drawn, by panel title and label."""
    cls, den = classification['settings'], dense['settings']
    height, width = den['dense_size']
    det_height, det_width = detector['settings']['det_size']
    panels = {
        f"inference img/s, {cls['dtype']}, batch {cls['batch']}\n(higher is better)":
            ratios_to_swin(classification, 'infer_img_s'),
        f"training img/s, {cls['dtype']}, batch {cls['train_batch']}\n(higher is better)":
            ratios_to_swin(classification, 'train_img_s'),
        f"dense fwd + bwd time, {den['dtype']}, {den['dense_batch']} x {height} x {width}\n"
        '(lower is better)': ratios_to_swin(dense, 'fwd_bwd_ms'),
        f"dense fwd + bwd peak memory, {den['dtype']}\n(lower is better)":
            ratios_to_swin(dense, 'peak_gb'),
        f"Mask R-CNN step time, fp16 AMP, {detector['settings']['det_batch']} x {det_height} x "
        f'{det_width}\n(lower is better)': ratios_to_swin(detector, 'step_ms'),
        'Mask R-CNN step peak memory\n(lower is better)': ratios_to_swin(detector, 'peak_gb'),
    }
    figure = Figure(figsize=(13, 8.5))
    for ax, (title, ratios) in zip(figure.subplots(2, 3).flat, panels.items()):
        names = list(ratios)[::-1]
        colors = ['C3' if name.startswith('DSNet') else 'C7' if name == 'Swin-T' else 'C0'
                  for name in names]
        bars = ax.barh(names, [ratios[name] for name in names], color=colors)
        ax.bar_label(bars, labels=[f'{ratios[name]:.2f}x' for name in names], padding=2,
                     fontsize=8)
        ax.axvline(1.0, color='black', linewidth=0.8)
        ax.set_xlim(0, max(ratios.values()) * 1.22)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel('ratio to Swin-T in the same run')
    figure.suptitle('DSNet and peers as a ratio to Swin-T, one NVIDIA H200 (run 1)')
    notes = [source_line(name, data) for name, data in
             ((CLASSIFICATION, classification), (DENSE, dense), (DETECTOR, detector))]
    notes.append('Peak memory: torch.cuda.max_memory_allocated. Dense and Mask R-CNN peers are '
                 "MMDetection's own backbones; classification peers are timm's.")
    figure.text(0.01, 0.01, '\n'.join(notes), fontsize=8, va='bottom')
    figure.subplots_adjust(left=0.09, right=0.98, bottom=0.15, top=0.9, hspace=0.45,
                           wspace=0.45)
    return figure, panels


def spread(values: List[float], gap: float) -> List[float]:
    """``values`` moved apart, in their order, until neighbours are ``gap`` apart or more: where
    the end labels of lines that end close together go."""
    order = sorted(range(len(values)), key=values.__getitem__)
    placed = list(values)
    for previous, current in zip(order, order[1:]):
        placed[current] = max(placed[current], placed[previous] + gap)
    return placed


def draw_size_lines(ax, sizes: List[str], series: Dict[str, List[float]], unit: str) -> None:
    """On ``ax``, log-log: a line per backbone of ``series`` (its values at ``sizes``, ``HxW``)
    against megapixels, each with its own colour and marker and labelled at its right end with
    its last value and ``unit`` (if any). DSNet's lines are thin and on top of the peers' wide,
    pale dotted ones, so that one that runs beside a peer shows (DSNet-S's FLOPs beside
    PVT-v2-b2's); a DSNet variant (a name with a comma) is dash-dotted."""
    megapixels = [int(size.split('x')[0]) * int(size.split('x')[1]) / 1e6 for size in sizes]
    for number, (name, values) in enumerate(series.items()):
        if name.startswith('DSNet'):
            style = dict(linestyle='-.' if ',' in name else '-', linewidth=1.6, markersize=6,
                         markerfacecolor=f'C{number}', zorder=3)
        else:
            style = dict(linestyle=':', linewidth=3.5, alpha=0.6, markersize=12,
                         markerfacecolor='none', markeredgewidth=1.5, zorder=2)
        ax.plot(megapixels, values, label=name, color=f'C{number}',
                marker=MARKERS[number % len(MARKERS)], **style)
    ax.set_xscale('log')
    ax.set_yscale('log')
    # Slanted: the two largest sizes are a fifth of a decade apart.
    ax.set_xticks(megapixels, [f"{size.replace('x', ' x ')} ({mp:.2f} MP)"
                               for size, mp in zip(sizes, megapixels)],
                  rotation=35, ha='right', rotation_mode='anchor', fontsize=9)
    ax.minorticks_off()
    # Labels at the right ends, at least 0.08 decade (a line of text) apart on the log axis.
    ends = [values[-1] for values in series.values()]
    places = spread([math.log10(end) for end in ends], 0.08)
    for number, (name, end, place) in enumerate(zip(series, ends, places)):
        text = f'{name}: {end:.3g}' + (f' {unit}' if unit else '')
        ax.annotate(text, (megapixels[-1], end),
                    xytext=(1.12 * megapixels[-1], 10**place), fontsize=9, color=f'C{number}',
                    va='center', arrowprops=dict(arrowstyle='-', color=f'C{number}',
                                                 linewidth=0.6))
    ax.set_xlim(megapixels[0] / 1.3, megapixels[-1] * 7)
    ax.set_xlabel('input size (batch 1)')
    ax.grid(True, which='major', alpha=0.3)


def draw_flops_vs_size(data: dict) -> Tuple[Figure, Dict[str, List[float]]]:
    """GFLOPs against input size, log-log, a line per backbone labelled at its end; returns the
    figure and the GFLOPs drawn, by label, in the order of ``settings.flops_sizes``."""
    sizes = data['settings']['flops_sizes']
    series = {label(row['model']): [row[f'gflops_{size}'] for size in sizes]
              for row in data['results']}
    figure = Figure(figsize=(11, 7))
    ax = figure.subplots()
    draw_size_lines(ax, sizes, series, unit='')
    ax.set_ylabel('backbone GFLOPs (log scale)')
    ax.legend(loc='upper left', fontsize=9)
    ax.set_title('Backbone FLOPs against input size')
    figure.text(0.01, 0.01, source_line(FLOPS, data) + "; MMEngine's FlopAnalyzer, a "
                'multiply-add counts one', fontsize=8, va='bottom')
    figure.subplots_adjust(bottom=0.22)
    return figure, series


def step_memory_gb(row: dict) -> float:
    """A dense row's memory of the step itself: its fresh process's peak resident memory less
    what the process held before the first step (weights, gradients, activations and the
    kernels' workspace remain)."""
    return row['peak_gb'] - row['mem_before_gb']


def draw_dense_vs_size(files: Dict[str, dict]) -> Tuple[Figure, Dict[str, Dict[str, List[float]]]]:
    """The dense forward + backward of each backbone against input size, from ``files`` (size ->
    the JSON measuring it, ``DENSE_SIZES``): its memory (:func:`step_memory_gb`) and its time.
    Returns the figure and, by panel, the values drawn."""
    sizes = list(files)
    models = [row['model'] for row in next(iter(files.values()))['results']]
    rows = {size: {row['model']: row for row in data['results']} for size, data in files.items()}
    memory = {label(model): [step_memory_gb(rows[size][model]) for size in sizes]
              for model in models}
    seconds = {label(model): [rows[size][model]['fwd_bwd_ms'] / 1000 for size in sizes]
               for model in models}
    figure = Figure(figsize=(15, 7))
    memory_ax, time_ax = figure.subplots(1, 2)
    draw_size_lines(memory_ax, sizes, memory, 'GB')
    memory_ax.set_ylabel('step memory, GB (log scale)')
    memory_ax.set_title('Memory of a forward + backward')
    memory_ax.legend(loc='upper left', fontsize=9)
    draw_size_lines(time_ax, sizes, seconds, 's')
    time_ax.set_ylabel('seconds per forward + backward (log scale)')
    time_ax.set_title('Time of a forward + backward')
    first = DENSE_SIZES[sizes[0]]
    machine = files[sizes[0]]['machine']
    figure.text(0.01, 0.01, f'docs/benchmarks/cpu/dense_sizes/dense_<size>.json: '
                f"{machine_name(machine)}, torch {machine['torch']}, {DATES[first]}; fp32, "
                'batch 1, each model in a fresh process', fontsize=8, va='bottom')
    figure.subplots_adjust(bottom=0.24, wspace=0.45)
    return figure, dict(memory_gb=memory, seconds=seconds)


def save(figure: Figure, path: str) -> None:
    """Write ``figure`` to the PNG ``path``."""
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=110)


def main(argv=None) -> List[str]:
    """Draw every figure into ``--out``; returns the paths written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=osp.join(BENCHMARKS, 'figures'),
                        help='folder for the PNGs (default: %(default)s)')
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    classification = load(CLASSIFICATION)
    figures = {
        'top1_vs_throughput.png': draw_top1_vs_throughput(classification)[0],
        'ratio_to_swin.png': draw_ratio_to_swin(classification, load(DENSE),
                                                load(DETECTOR))[0],
        'flops_vs_size.png': draw_flops_vs_size(load(FLOPS))[0],
        'dense_vs_size.png': draw_dense_vs_size(
            {size: load(name) for size, name in DENSE_SIZES.items()})[0],
    }
    paths = []
    for name, figure in figures.items():
        path = osp.join(args.out, name)
        save(figure, path)
        print(f'saved {path}')
        paths.append(path)
    return paths


if __name__ == '__main__':
    main()

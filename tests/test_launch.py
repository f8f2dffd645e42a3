"""mmdsnet.launch: config loading and the process group shared by the tools."""
import os
import textwrap
import time

import pytest
import torch
import torch.distributed as dist
from mmengine.config import Config
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from mmdsnet import launch
from mmdsnet.compat.versions import TORCH
from mmdsnet.launch import distributed_session, load_config, shutdown_process_groups

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO_ROOT, 'configs', 'quickstart', 'dsnet_tiny_digits.py')


def test_overrides_apply_and_work_dir_defaults_to_config_name():
    cfg = load_config(CONFIG, {'train_cfg.max_epochs': 3, 'model.backbone.with_cp': True})
    assert cfg.train_cfg.max_epochs == 3 and cfg.model.backbone.with_cp is True
    assert cfg.work_dir == os.path.join('work_dirs', 'dsnet_tiny_digits')


def test_misspelled_top_level_key_is_refused_with_a_suggestion():
    with pytest.raises(ValueError, match=r"has no 'trian_cfg'; did you mean 'train_cfg'"):
        load_config(CONFIG, {'trian_cfg.max_epochs': 3})


def test_new_top_level_key_unlike_any_existing_one_is_allowed():
    assert load_config(CONFIG, {'find_unused_parameters': True}).find_unused_parameters


DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
EVALUATORS = ('val_evaluator', 'test_evaluator')


@pytest.fixture
def log_lines(monkeypatch):
    """What load_config logs."""
    lines = []
    monkeypatch.setattr(launch, 'print_log', lambda message, logger: lines.append(message))
    return lines


@pytest.mark.parametrize('name', [
    'dsnet_tiny_in1k.py', 'mask_rcnn_dsnet_small_coco.py', 'retinanet_dsnet_small_coco.py',
    'quickstart/dsnet_tiny_digits.py', 'quickstart/mask_rcnn_dsnet_tiny_shapes.py'
])
def test_data_root_reaches_every_dataset_and_evaluator_annotation_file(name, log_lines):
    path = os.path.join(REPO_ROOT, 'configs', name)
    original = Config.fromfile(path)
    cfg = load_config(path, {'data_root': '/some/tmp'})
    assert cfg.data_root == '/some/tmp'
    for loader in DATALOADERS:
        assert cfg[loader].dataset.data_root == '/some/tmp'
    moved = [f'{loader}.dataset.data_root' for loader in DATALOADERS]
    coco = 'coco' in name or 'shapes' in name
    for evaluator in EVALUATORS:
        if coco:
            relative = os.path.relpath(original[evaluator].ann_file, original.data_root)
            assert cfg[evaluator].ann_file == f'/some/tmp/{relative}'
            assert relative.startswith('annotations/instances_val')
            moved.append(f'{evaluator}.ann_file')
        else:
            assert 'ann_file' not in cfg[evaluator]
    assert log_lines == [f'data_root /some/tmp (was {original.data_root}) set in: '
                         f'{", ".join(moved)}']
    # nothing else changes
    for loader in DATALOADERS:
        cfg[loader].dataset.data_root = original[loader].dataset.data_root
    for evaluator in EVALUATORS:
        cfg[evaluator] = original[evaluator]
    cfg.data_root = original.data_root
    assert cfg.to_dict() == dict(original.to_dict(), work_dir=cfg.work_dir, launcher='none')


@pytest.mark.parametrize('name', ['dsnet_tiny_in1k.py', 'mask_rcnn_dsnet_small_coco.py'])
def test_without_a_data_root_override_the_data_settings_are_those_of_the_file(name, log_lines):
    path = os.path.join(REPO_ROOT, 'configs', name)
    original = Config.fromfile(path)
    for cfg in (load_config(path), load_config(path, {'train_cfg.max_epochs': 3})):
        for key in ('data_root', *DATALOADERS, *EVALUATORS):
            assert cfg[key] == original[key], key
    assert log_lines == []


def test_misspelled_data_root_is_refused():
    with pytest.raises(ValueError, match=r"has no 'data_rot'; did you mean 'data_root'"):
        load_config(CONFIG, {'data_rot': '/some/tmp'})


def test_keys_given_with_data_root_keep_their_values(log_lines):
    path = os.path.join(REPO_ROOT, 'configs', 'mask_rcnn_dsnet_small_coco.py')
    cfg = load_config(path, {
        'data_root': '/coco',
        'test_dataloader.dataset.data_root': '/test-dev',
        'test_evaluator.ann_file': '/test-dev/annotations/image_info_test-dev2017.json'
    })
    assert [cfg[loader].dataset.data_root for loader in DATALOADERS] == [
        '/coco', '/coco', '/test-dev']
    assert cfg.val_evaluator.ann_file == '/coco/annotations/instances_val2017.json'
    assert cfg.test_evaluator.ann_file == '/test-dev/annotations/image_info_test-dev2017.json'
    assert log_lines == ['data_root /coco (was data/coco/) set in: train_dataloader.dataset.'
                         'data_root, val_dataloader.dataset.data_root, val_evaluator.ann_file']


def write_config(tmp_path, text):
    path = tmp_path / 'config.py'
    path.write_text(textwrap.dedent(text).format(base=CONFIG))
    return str(path)


def test_data_root_reaches_datasets_inside_wrappers_and_evaluator_lists(tmp_path):
    path = write_config(tmp_path, """\
        _base_ = [{base!r}]
        train_dataloader = dict(dataset=dict(
            _delete_=True,
            type='ConcatDataset',
            datasets=[
                dict(type='ImageNet', data_root='data/digits', split='train'),
                dict(type='RepeatDataset', times=2,
                     dataset=dict(type='ImageNet', data_root='data/digits/', split='val')),
            ]))
        val_evaluator = [
            dict(type='Accuracy'),
            dict(type='CocoMetric', ann_file='data/digits/annotations/val.json'),
            dict(type='CocoMetric', ann_file='/elsewhere/annotations/val.json'),
        ]
        """)
    cfg = load_config(path, {'data_root': '/some/tmp/'})
    datasets = cfg.train_dataloader.dataset.datasets
    assert datasets[0].data_root == datasets[1].dataset.data_root == '/some/tmp/'
    assert cfg.val_dataloader.dataset.data_root == '/some/tmp/'
    assert [metric.get('ann_file') for metric in cfg.val_evaluator] == [
        None, '/some/tmp/annotations/val.json', '/elsewhere/annotations/val.json']


def test_data_root_that_would_miss_a_dataset_is_refused_naming_the_key_to_pass(tmp_path):
    path = write_config(tmp_path, """\
        _base_ = [{base!r}]
        val_dataloader = dict(dataset=dict(data_root='data/other'))
        """)
    with pytest.raises(ValueError) as error:
        load_config(path, {'data_root': '/some/tmp'})
    assert str(error.value) == (
        "--cfg-options data_root=/some/tmp would not reach val_dataloader.dataset.data_root "
        f"('data/other'): {path} builds it from another root than its data_root "
        "('data/digits'). Pass the datasets' own keys instead, e.g. "
        'val_dataloader.dataset.data_root=/some/tmp')
    # as asked: the given key is the dataset's own
    cfg = load_config(path, {'data_root': '/x', 'val_dataloader.dataset.data_root': '/y'})
    assert [cfg[loader].dataset.data_root for loader in DATALOADERS] == ['/x', '/y', '/x']


def test_data_root_that_nothing_reads_is_refused(tmp_path):
    path = write_config(tmp_path, """\
        data_root = 'data/digits'
        model = dict(type='ImageClassifier')
        """)
    with pytest.raises(ValueError, match=r'nothing in .* reads data_root; set the datasets'):
        load_config(path, {'data_root': '/some/tmp'})


@pytest.fixture
def one_process_cpu_launch(monkeypatch, free_port):
    """The environment torchrun gives a single CPU process."""
    for key, value in dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
                           MASTER_PORT=str(free_port()), OMP_NUM_THREADS='1',
                           MKL_NUM_THREADS='1').items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    yield load_config(CONFIG, launcher='pytorch')
    shutdown_process_groups()


def gloo_threads():
    names = (open(f'/proc/self/task/{task}/comm').read().strip()
             for task in os.listdir('/proc/self/task'))
    return [name for name in names if 'gloo' in name]


def gloo_threads_once_named(seconds=10.):
    """:func:`gloo_threads`, waiting up to ``seconds`` for one: each thread names itself once
    it runs, which on busy cores can come after the group is up."""
    deadline = time.monotonic() + seconds
    while not gloo_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    return gloo_threads()


def train_a_step_with_ddp():
    runner = {'model': DistributedDataParallel(nn.Linear(2, 1))}
    runner['self'] = runner  # a Runner refers back to itself through its loops and hooks
    runner['model'](torch.ones(1, 2)).sum().backward()


def test_distributed_session_stops_the_gloo_threads_after_success(one_process_cpu_launch):
    cfg = one_process_cpu_launch
    with distributed_session(cfg):
        assert dist.get_backend() == 'gloo' and dist.get_world_size() == 1
        assert cfg.model_wrapper_cfg.device_ids is None
        if TORCH < (2, 2) and not gloo_threads_once_named(seconds=1.):
            pytest.skip(f'torch {torch.__version__} does not name its gloo threads (2.14 does): '
                        'nothing here to see them stop')
        assert gloo_threads_once_named()
        train_a_step_with_ddp()
    assert not dist.is_initialized()
    # a gloo thread alive when Python shuts down can abort the process
    assert gloo_threads() == []


def test_distributed_session_leaves_the_group_alone_after_an_error(one_process_cpu_launch):
    with pytest.raises(RuntimeError, match='training failed'):
        with distributed_session(one_process_cpu_launch):
            raise RuntimeError('training failed')
    assert dist.is_initialized()

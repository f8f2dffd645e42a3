"""mmdsnet.models.backbones.dsnet_weights: strict loading names what does not fit, and the public
releases' weight files load as they are, converted in memory: ``init_cfg``
Pretrained on a DSNet (with and without ``prefix='backbone.'``) and MMEngine's
``load_checkpoint`` on a whole classifier (what ``get_model(..., pretrained=...)``,
``load_from`` and the inferencers run) take the authors' ``.pth`` and PaddleClas' ``.pdparams``.
The classifier must give the releases' logits (the oracle of ``tests/dsnet_releases.py``).

By URL, from a server on 127.0.0.1 and a torch hub cache in a temporary folder: the file is
downloaded once and read the same way; a download that cannot be read is never cached, and every
failure raises one error that names the URL, the cache path and how to pass a local file.
"""
import functools
import http.server
import os
import pickle
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import dsnet_releases as releases
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner, load_checkpoint
from release_checkpoints import write_authors_pth, write_pdparams

import mmdsnet  # noqa: F401  registers DSNet and the release-aware loaders
from mmdsnet.models import DSNet
from mmdsnet.models.backbones.dsnet_weights import (WeightsURLError, cached_weights_path,
                                                    convert_release_state_dict,
                                                    load_pretrained_strictly, read_weights)

REPO_ROOT = Path(__file__).resolve().parents[3]
LOCAL_FILE_OPTION = '--cfg-options model.backbone.init_cfg.checkpoint=PATH'


@pytest.fixture(scope='module')
def release_state_dict():
    return releases.random_release_state_dict()


@pytest.fixture(scope='module', params=['authors_pth', 'bare_pth', 'pdparams'])
def release_file(request, release_state_dict, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    if request.param == 'authors_pth':
        return write_authors_pth(release_state_dict, folder / 'dsnet_tiny.pth')
    if request.param == 'bare_pth':
        torch.save(release_state_dict, folder / 'dsnet_tiny_bare.pth')
        return str(folder / 'dsnet_tiny_bare.pth')
    return write_pdparams(release_state_dict, folder / 'DSNet_tiny_pretrained.pdparams')


def build_classifier():
    from mmpretrain.registry import MODELS
    return MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='DSNet', arch='tiny'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=releases.NUM_CLASSES, in_channels=512)))


def expected_backbone_weights(release_state_dict):
    """The release's backbone weights under our names (PaddleClas files count no batches)."""
    converted = convert_release_state_dict(release_state_dict, backbone_only=True)
    return {key[len('backbone.'):]: value for key, value in converted.items()
            if not key.endswith('num_batches_tracked')}


@pytest.mark.parametrize('prefix', [None, 'backbone.'])
def test_init_cfg_pretrained_takes_release_files(release_file, release_state_dict, prefix):
    model = DSNet('tiny', out_indices=(0, 1, 2, 3), out_norm_cfg=dict(type='BN'),
                  init_cfg=dict(type='Pretrained', checkpoint=release_file, prefix=prefix))
    model.init_weights()
    loaded = model.state_dict()
    for key, value in expected_backbone_weights(release_state_dict).items():
        assert torch.equal(loaded[key], value), key


def test_load_checkpoint_gives_the_classifier_the_release_logits(release_file,
                                                                 release_state_dict):
    model = build_classifier()
    load_checkpoint(model, release_file, map_location='cpu', strict=True)
    x = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = releases.release_forward(release_state_dict, x)
        assert expected.std() > 0.1  # the comparison below is not vacuous
        torch.testing.assert_close(model.eval()(x), expected, rtol=1e-5, atol=1e-5)


def test_a_release_without_head_loads_as_a_backbone(tmp_path, release_state_dict):
    without_head = {k: v for k, v in release_state_dict.items() if not k.startswith('head.')}
    path = write_pdparams(without_head, tmp_path / 'DSNet_tiny_backbone.pdparams')
    assert all(key.startswith('backbone.')
               for key in read_weights(path)['state_dict'])
    model = DSNet('tiny', init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    torch.testing.assert_close(model.final_norm.running_var,
                               release_state_dict['norm.running_var'], rtol=0, atol=0)


def test_a_release_file_with_other_keys_names_the_file_and_the_keys(tmp_path,
                                                                    release_state_dict):
    broken = dict(release_state_dict)
    broken['blocks3.1.attn.proj.weight'] = torch.zeros(1)
    del broken['blocks2.0.channel_up.weight']
    path = tmp_path / 'dsnet_variant.pth'
    torch.save({'model': broken}, path)
    model = DSNet('tiny', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError, match=r"dsnet_variant.pth: .*unknown keys "
                       r"\['blocks3.1.attn.proj.weight'\].*missing keys "
                       r"\['blocks2.0.channel_up.weight'\]"):
        model.init_weights()


def test_other_checkpoints_load_unchanged(tmp_path):
    checkpoint = {'state_dict': {'backbone.stages.0.patch_embed.weight': torch.ones(2)},
                  'meta': {'epoch': 3}}
    path = tmp_path / 'epoch_3.pth'
    torch.save(checkpoint, path)
    loaded = read_weights(str(path))
    assert loaded.keys() == checkpoint.keys() and loaded['meta'] == {'epoch': 3}
    assert torch.equal(loaded['state_dict']['backbone.stages.0.patch_embed.weight'],
                       torch.ones(2))


def test_load_pretrained_strictly_drops_ddp_prefix_and_names_what_does_not_fit(tmp_path):
    source = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    path = tmp_path / 'ddp.pth'
    torch.save({'state_dict': {f'module.0.{key}': value
                               for key, value in source[0].state_dict().items()}}, path)
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    load_pretrained_strictly(model, str(path), optional_prefixes=('1.', ))
    assert torch.equal(model[0].weight, source[0].weight)
    with pytest.raises(ValueError, match=r'ddp.pth \(prefix None\) does not fit two linears:\n'
                       r'  missing: 1.bias, 1.weight\n'):
        load_pretrained_strictly(model, str(path), description='two linears')


class ReleaseFileHandler(http.server.SimpleHTTPRequestHandler):
    """Serves its folder; ``/truncated/NAME`` sends the first half of ``NAME`` under the whole
    file's Content-Length and closes the connection, as a dropped download does."""

    def do_GET(self):
        self.server.requests.append(self.path)
        if not self.path.startswith('/truncated/'):
            super().do_GET()
            return
        data = (Path(self.directory) / self.path[len('/truncated/'):]).read_bytes()
        self.send_response(200)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data[:len(data) // 2])
        self.close_connection = True

    def log_message(self, *args):
        pass


class ReleaseServer:
    """An HTTP server on 127.0.0.1 (a free port) in a thread, serving ``folder``."""

    def __init__(self, folder):
        self.folder = folder
        handler = functools.partial(ReleaseFileHandler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
        self.httpd.requests = []
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05, ),
                                       daemon=True)  # a quick shutdown
        self.thread.start()

    @property
    def requests(self):
        """The paths requested so far."""
        return self.httpd.requests

    def url(self, name):
        return f'http://127.0.0.1:{self.httpd.server_port}/{name}'

    def serve(self, path, route=''):
        """Serve a copy of the file ``path``; returns its URL (``route='truncated/'``: cut
        off half-way)."""
        shutil.copy(path, self.folder / Path(path).name)
        return self.url(route + Path(path).name)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server(tmp_path):
    folder = tmp_path / 'served'
    folder.mkdir()
    release_server = ReleaseServer(folder)
    yield release_server
    if release_server.thread.is_alive():
        release_server.stop()


@pytest.fixture
def hub_dir(tmp_path, monkeypatch):
    """torch's hub folder, empty, in ``tmp_path``; returns its ``checkpoints`` folder."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    assert torch.hub.get_dir() == str(tmp_path / 'torch' / 'hub')
    return tmp_path / 'torch' / 'hub' / 'checkpoints'


def pretrained_dsnet(checkpoint):
    """A DSNet-tiny initialised from ``checkpoint``, as the COCO configs' backbone is."""
    model = DSNet('tiny', out_indices=(0, 1, 2, 3), out_norm_cfg=dict(type='mmpretrain.LN2d'),
                  init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.'))
    model.init_weights()
    return model


def assert_has_release_weights(model, release_state_dict):
    loaded = model.state_dict()
    for key, value in expected_backbone_weights(release_state_dict).items():
        assert torch.equal(loaded[key], value), key


def assert_names_url_cache_and_fix(message, url):
    assert url in message and cached_weights_path(url) in message, message
    assert LOCAL_FILE_OPTION in message, message


def test_url_is_downloaded_once_and_read_like_a_local_file(release_file, release_state_dict,
                                                           server, hub_dir):
    url = server.serve(release_file)
    assert_has_release_weights(pretrained_dsnet(url), release_state_dict)
    cached = hub_dir / Path(release_file).name
    assert cached_weights_path(url) == str(cached)
    assert os.listdir(hub_dir) == [cached.name]  # nothing left of the download
    assert cached.read_bytes() == Path(release_file).read_bytes()

    server.stop()
    assert_has_release_weights(pretrained_dsnet(url), release_state_dict)
    assert server.requests == [f'/{cached.name}']


def test_load_checkpoint_by_url_gives_the_classifier_the_release(release_state_dict, server,
                                                                 hub_dir, tmp_path):
    """What ``load_from`` and ``get_model(name, pretrained=URL)`` run."""
    url = server.serve(write_pdparams(release_state_dict,
                                      tmp_path / 'DSNet_tiny_pretrained.pdparams'))
    model = build_classifier()
    checkpoint = load_checkpoint(model, url, map_location='cpu', strict=True)
    assert checkpoint['meta']['source_format'] == 'PaddleClas .pdparams'
    torch.testing.assert_close(model.head.fc.weight, release_state_dict['head.weight'],
                               rtol=0, atol=0)


def test_coco_config_initialises_from_the_url_without_a_manual_step(release_state_dict, server,
                                                                    hub_dir, tmp_path):
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    url = server.serve(write_pdparams(release_state_dict,
                                      tmp_path / 'DSNet_tiny_pretrained.pdparams'))
    cfg = Config.fromfile(REPO_ROOT / 'configs' / 'mask_rcnn_dsnet_tiny_coco.py')
    cfg.merge_from_dict({'model.backbone.init_cfg.checkpoint': url})  # what --cfg-options does
    init_default_scope(cfg.default_scope)
    detector = MODELS.build(cfg.model)
    detector.init_weights()
    assert_has_release_weights(detector.backbone, release_state_dict)
    assert (hub_dir / 'DSNet_tiny_pretrained.pdparams').is_file()


def write_crafted_pdparams(path, code_running_object):
    with open(path, 'wb') as file:
        pickle.dump({'blocks1.0.conv.weight': code_running_object}, file)
    return str(path)


@pytest.mark.parametrize('problem', ['truncated', 'crafted_pth', 'crafted_pdparams'])
def test_a_download_that_cannot_be_read_is_not_cached(problem, release_state_dict, server,
                                                      hub_dir, tmp_path, crafted_pth,
                                                      code_running_object, marker):
    if problem == 'truncated':
        url = server.serve(write_pdparams(release_state_dict,
                                          tmp_path / 'DSNet_tiny_pretrained.pdparams'),
                           route='truncated/')
    elif problem == 'crafted_pth':
        url = server.serve(crafted_pth)
    else:
        url = server.serve(write_crafted_pdparams(tmp_path / 'DSNet_tiny_crafted.pdparams',
                                                  code_running_object))
    with pytest.raises(WeightsURLError) as error:
        pretrained_dsnet(url)
    message = str(error.value)
    assert message.startswith('the file downloaded from the URL cannot be used, so it was '
                              'deleted, not cached: ')
    assert_names_url_cache_and_fix(message, url)
    expected = 'not a readable .pdparams' if problem == 'truncated' else 'refused to load'
    assert expected in message
    assert not marker.exists()
    assert os.listdir(hub_dir) == []


@pytest.mark.parametrize('where', ['closed_port', 'missing_file'])
def test_a_failed_download_names_url_cache_and_the_local_file_option(where, server, hub_dir,
                                                                     free_port):
    if where == 'closed_port':
        url = f'http://127.0.0.1:{free_port()}/DSNet_tiny_pretrained.pdparams'
    else:
        url = server.url('DSNet_tiny_pretrained.pdparams')  # served folder is empty
    with pytest.raises(WeightsURLError) as error:
        pretrained_dsnet(url)
    message = str(error.value)
    reason = 'URLError' if where == 'closed_port' else 'HTTP Error 404'
    assert message.startswith('could not download the weights: ') and reason in message
    assert_names_url_cache_and_fix(message, url)
    assert 'download the URL to the cache path yourself' in message
    assert os.listdir(hub_dir) == []


def test_a_damaged_cached_file_is_named_and_kept(release_state_dict, server, hub_dir,
                                                 tmp_path):
    url = server.serve(write_pdparams(release_state_dict,
                                      tmp_path / 'DSNet_tiny_pretrained.pdparams'))
    cached = Path(cached_weights_path(url))
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b'\x80\x04not a pickle')
    with pytest.raises(WeightsURLError) as error:
        pretrained_dsnet(url)
    message = str(error.value)
    assert message.startswith('the cached copy of the URL cannot be used: ')
    assert f'delete {cached} to download it again' in message
    assert_names_url_cache_and_fix(message, url)
    assert cached.read_bytes() == b'\x80\x04not a pickle' and server.requests == []

    cached.unlink()  # as the error says
    assert_has_release_weights(pretrained_dsnet(url), release_state_dict)


class DSNetClassifier(BaseModel):
    """A DSNet-tiny with a 2-class head, initialised from ``checkpoint``; training only."""

    def __init__(self, checkpoint):
        super().__init__()
        self.backbone = DSNet('tiny', init_cfg=dict(type='Pretrained', checkpoint=checkpoint))
        self.head = nn.Linear(512, 2)

    def forward(self, inputs, labels, mode='loss'):
        logits = self.head(self.backbone(torch.stack(inputs))[-1].mean((2, 3)))
        return {'loss': nn.functional.cross_entropy(logits, torch.stack(labels))}


class RecordsIterations(Hook):

    def __init__(self):
        self.iterations = 0

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.iterations += 1


def test_runner_raises_before_the_first_iteration(hub_dir, free_port, tmp_path):
    url = f'http://127.0.0.1:{free_port()}/DSNet_tiny_pretrained.pdparams'
    images = [dict(inputs=torch.rand(3, 64, 64), labels=torch.tensor(i % 2)) for i in range(4)]
    hook = RecordsIterations()
    runner = Runner(
        model=DSNetClassifier(url), work_dir=str(tmp_path / 'work'),
        train_dataloader=dict(dataset=images, batch_size=2, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='pseudo_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=True, max_epochs=1), custom_hooks=[hook],
        default_scope='mmengine')
    with pytest.raises(WeightsURLError, match='could not download the weights'):
        runner.train()
    assert hook.iterations == 0


RANK_SCRIPT = """
import sys
import torch.distributed as dist
from mmdsnet.models.backbones.dsnet_weights import WeightsURLError, load_from_url
dist.init_process_group('gloo')
state_dict = load_from_url(sys.argv[1])['state_dict']
print('rank', dist.get_rank(), 'head', float(state_dict['head.fc.bias'].sum()))
try:
    load_from_url(sys.argv[2])
except WeightsURLError as error:
    print('rank', dist.get_rank(), 'WeightsURLError', str(error).splitlines()[0])
"""


def test_ranks_share_one_download_and_all_raise_when_it_fails(release_state_dict, server,
                                                              hub_dir, tmp_path, free_port):
    url = server.serve(write_pdparams(release_state_dict,
                                      tmp_path / 'DSNet_tiny_pretrained.pdparams'))
    unreachable = f'http://127.0.0.1:{free_port()}/DSNet_small_pretrained.pdparams'
    env = {**os.environ, 'PYTHONPATH': str(REPO_ROOT), 'OMP_NUM_THREADS': '1',
           'MASTER_ADDR': '127.0.0.1', 'MASTER_PORT': str(free_port()), 'WORLD_SIZE': '2'}
    ranks = [subprocess.Popen([sys.executable, '-c', RANK_SCRIPT, url, unreachable],
                              env={**env, 'RANK': str(rank)}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for rank in range(2)]
    try:
        outputs = [rank.communicate(timeout=300)[0] for rank in ranks]
    finally:
        for rank in ranks:
            rank.kill()  # a rank still running waits forever: the test fails on the timeout
    head = float(release_state_dict['head.bias'].sum())
    for rank, output in enumerate(outputs):
        assert f'rank {rank} head {head}' in output, output[-3000:]
        assert (f'rank {rank} WeightsURLError could not download the weights: URLError'
                in output), output[-3000:]
    assert server.requests == ['/DSNet_tiny_pretrained.pdparams']  # rank 0's download

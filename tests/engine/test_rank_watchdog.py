"""A rank that dies or freezes stops the others within ``rank_watchdog.timeout`` seconds (3 in
the toy), with a message naming it; ``--resume`` then finishes the run."""
import errno
import re
import threading
import time

import pytest
import torch.distributed as dist
from mmengine.config import Config
from torch.distributed import DistBackendError

from mmdsnet.engine import rank_watchdog
from mmdsnet.engine.rank_watchdog import STORE_HAS_CHECK, RankWatchdog, is_communication_error

TIMEOUT = 3
needs_store_check = pytest.mark.skipif(
    not STORE_HAS_CHECK, reason='torch < 2.2 has no TCPStore.check: the watchdog is off there, '
    'and says so (test_the_watchdog_says_it_is_off_without_store_check)')
SLACK = 3  # a heartbeat interval and scheduling on two busy cores


@needs_store_check
@pytest.mark.parametrize('fault', ['SIGKILL', 'SIGSTOP'], ids=['dies', 'freezes'])
def test_a_lost_rank_stops_the_other_within_the_timeout(torchrun_toy, tmp_path, fault):
    """Rank 1 is SIGKILLed, or SIGSTOPped (its connections stay open, so no collective fails;
    only the missing heartbeat tells), after iteration 3, mid-way through epoch 2."""
    lost = torchrun_toy(tmp_path, '--kill-at-iter=3', f'--kill-with={fault}', '--on-rank=1')
    assert lost.returncode != 0
    message = re.search(r'(\d\d/\d\d \d\d:\d\d:\d\d) - mmengine - ERROR - .* lost a rank: '
                        r'rank 1 of 2 \([^)]*pid \d+\) sent no heartbeat for \d+ s '
                        rf'\(rank_watchdog.timeout={TIMEOUT}\): it died or froze\. Rank 0 stops '
                        r'now \(exit code 69\)', lost.output)
    assert message, lost.output[-3000:]
    logged_at = time.mktime(time.strptime(f'{time.localtime().tm_year}/{message.group(1)}',
                                          '%Y/%m/%d %H:%M:%S'))
    assert logged_at - float((tmp_path / 'fault_at').read_text()) < TIMEOUT + SLACK
    assert not (tmp_path / 'epoch_2.pth').exists()

    resumed = torchrun_toy(tmp_path, '--resume')
    assert resumed.returncode == 0, resumed.output[-3000:]
    assert 'resumed epoch: 1, iter: 2' in resumed.output
    assert (tmp_path / 'epoch_3.pth').is_file()


def test_what_counts_as_a_peer_gone_away():
    gloo = RuntimeError('[third_party/gloo/gloo/transport/tcp/pair.cc:545] Read error '
                        '[127.0.0.1]:28908: Connection reset by peer')
    assert is_communication_error(gloo)
    assert is_communication_error(DistBackendError('NCCL communicator was aborted'))
    assert not is_communication_error(OSError(errno.ENOSPC, 'No space left on device'))


def test_the_watchdog_says_it_is_off_without_store_check(monkeypatch):
    monkeypatch.setattr(rank_watchdog, 'STORE_HAS_CHECK', False)  # as on torch 2.1
    monkeypatch.setattr(dist, 'is_initialized', lambda: True)
    monkeypatch.setattr(dist, 'get_world_size', lambda: 2)
    logged = []
    monkeypatch.setattr(rank_watchdog, 'print_log',
                        lambda message, **kwargs: logged.append(message))
    cfg = Config(dict(rank_watchdog=dict(interval=5, timeout=60)))
    assert RankWatchdog.for_config(cfg) is None
    assert any(message.startswith('rank_watchdog is off: it needs TCPStore.check')
               for message in logged), logged


@pytest.fixture
def two_watchdogs(monkeypatch, free_port):
    """Watchdogs of ranks 0 and 1 (not started) on a store hosted here, as torchrun would;
    rank 1's exit raises ``SystemExit`` with its message instead of ending the process."""
    port = free_port()
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', str(port))
    store = dist.TCPStore('127.0.0.1', port, is_master=True, wait_for_workers=False)
    watchdogs = [RankWatchdog(rank, 2, interval=0.05, timeout=0.5) for rank in (0, 1)]

    def exit_(lost, reason):
        raise SystemExit(f'rank {lost} of 2 ({watchdogs[1]._process_of(lost)}) {reason}')

    monkeypatch.setattr(watchdogs[1], '_exit', exit_)
    yield watchdogs
    del store


def posted_verdict(watchdog):
    """What was posted in the store as the lost rank and why, or None."""
    key = watchdog._key('lost')
    return watchdog._store.get(key).decode() if watchdog._store.check([key]) else None


@needs_store_check
def test_a_silent_rank_is_lost(two_watchdogs):
    """Rank 0 never beats: after ``timeout`` seconds rank 1 posts it as lost, for every rank to
    stop, and stops."""
    rank1 = two_watchdogs[1]
    start = time.monotonic()
    with pytest.raises(SystemExit, match=r'rank 0 of 2 \(.*, pid \d+\) sent no heartbeat for '):
        rank1._watch()
    assert time.monotonic() - start >= rank1.timeout
    assert posted_verdict(rank1).startswith('0 sent no heartbeat for ')


@needs_store_check
def test_a_rank_that_signed_off_is_not_lost(two_watchdogs):
    """Rank 0 beats, then signs off and goes silent; rank 1 watches it for three timeouts and
    neither stops nor posts a verdict."""
    rank0, rank1 = two_watchdogs
    rank0.start()
    beats, deadline = rank1._key('beat', 0), time.monotonic() + 10
    while rank1._store.add(beats, 0) == 0 and time.monotonic() < deadline:  # its first beat
        time.sleep(rank0.interval)
    rank0.stop()
    assert rank1._store.add(beats, 0) > 0 and rank1._store.check([rank1._key('signed_off', 0)])
    start = time.monotonic()
    threading.Timer(3 * rank1.timeout, rank1._stopping.set).start()
    rank1._watch()  # a verdict would raise SystemExit
    # It watched until told to stop, long past the timeout, rather than returning early.
    assert time.monotonic() - start >= 3 * rank1.timeout
    assert posted_verdict(rank1) is None


@needs_store_check
def test_another_error_stops_the_other_ranks_at_once_naming_it(two_watchdogs):
    """A rank that fails on its own (here its disk is full) tells the others, which stop at
    their next heartbeat instead of waiting for it in a collective."""
    rank0, rank1 = two_watchdogs
    rank0.start()
    rank0.after_error(OSError(errno.ENOSPC, 'No space left on device'))
    start = time.monotonic()
    with pytest.raises(SystemExit, match=r'rank 0 of 2 \(.*, pid \d+\) stopped with OSError: '
                                         r'\[Errno 28\] No space left on device'):
        rank1._watch()
    # At once: at its first heartbeat, well before a silent rank would count as lost.
    assert time.monotonic() - start < rank1.timeout


@pytest.mark.parametrize('interval', [5, 6])
def test_interval_must_be_shorter_than_timeout(interval):
    with pytest.raises(ValueError, match='0 < interval < timeout'):
        RankWatchdog(0, 2, interval=interval, timeout=5)

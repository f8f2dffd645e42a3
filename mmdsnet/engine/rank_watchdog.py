"""A heartbeat between the ranks of a job, so that a dead rank stops the job in seconds.

Without it, when one rank dies (out of memory, a lost node) the others wait in their next
collective until the process group times out (30 minutes by default), holding their devices, or
forever where a backend never notices.
"""
import contextlib
import datetime
import logging
import os
import socket
import sys
import threading
import time
from typing import Optional

import torch.distributed as dist
from mmengine.logging import print_log

LOST_RANK_EXIT_CODE = 69  # sysexits' EX_UNAVAILABLE: a process the job needs is gone
# torch.distributed.DistError came in torch 2.2; torch 2.1 has only its DistBackendError (NCCL).
DIST_ERROR = getattr(dist, 'DistError', dist.DistBackendError)
# The watchdog asks the store whether a key exists without waiting for it: torch >= 2.2.
STORE_HAS_CHECK = hasattr(dist.TCPStore, 'check')


def is_communication_error(error: BaseException) -> bool:
    """Whether ``error`` says that a collective failed because a peer went away."""
    # gloo raises a plain RuntimeError ("[.../gloo/transport/tcp/pair.cc] ... Connection reset
    # by peer"); NCCL and the stores raise torch.distributed.DistError.
    return isinstance(error, DIST_ERROR) or 'gloo' in str(error).lower()


class RankWatchdog:
    """Heartbeats through the job's rendezvous store; stops this process when a rank is lost.

    A daemon thread on every rank adds 1 to its counter in the TCP store at
    ``MASTER_ADDR:MASTER_PORT`` (hosted by torchrun, or by rank 0 without it) every
    ``interval`` seconds and reads the counter of the next rank in a ring. When that counter has
    not moved for ``timeout`` seconds (and its rank did not sign off by :meth:`stop`), the rank
    died or froze: the watcher posts it, and every rank's thread, at its next beat, logs which
    rank was lost and exits the process with :data:`LOST_RANK_EXIT_CODE`, whatever its main
    thread is blocked in. Losing the store itself for ``timeout`` seconds ends the rank the same
    way.

    Args:
        rank (int): This process's rank.
        world_size (int): Number of ranks.
        interval (float): Seconds between heartbeats.
        timeout (float): Seconds of silence after which a rank counts as lost; more than
            ``interval``.
    """

    def __init__(self, rank: int, world_size: int, interval: float, timeout: float) -> None:
        if not 0 < interval < timeout:
            raise ValueError(f'rank_watchdog needs 0 < interval < timeout, got interval='
                             f'{interval} and timeout={timeout} (seconds)')
        self.rank, self.world_size = rank, world_size
        self.interval, self.timeout = interval, timeout
        self.address = f'{os.environ["MASTER_ADDR"]}:{os.environ["MASTER_PORT"]}'
        # torch 2.1 gives the connection whole seconds of the timeout (of 0.5 s: none); the
        # store's operations then wait as long as asked
        self._store = dist.TCPStore(
            os.environ['MASTER_ADDR'], int(os.environ['MASTER_PORT']), is_master=False,
            timeout=datetime.timedelta(seconds=max(timeout, 1)), wait_for_workers=False)
        self._store.set_timeout(datetime.timedelta(seconds=timeout))
        # torchrun keeps its store across restarts of the workers: keep each attempt apart
        self._prefix = f'mmdsnet/rank_watchdog/{os.environ.get("TORCHELASTIC_RESTART_COUNT", 0)}'
        self._store.set(self._key('process', rank), f'{socket.gethostname()}, pid {os.getpid()}')
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name='rank-watchdog', daemon=True)

    @classmethod
    def for_config(cls, cfg) -> Optional['RankWatchdog']:
        """The watchdog ``cfg.rank_watchdog`` asks for, started; None in a one-process run or
        with ``rank_watchdog=None``."""
        settings = cfg.get('rank_watchdog')
        if settings is None or not dist.is_initialized() or dist.get_world_size() == 1:
            return None
        if not STORE_HAS_CHECK:
            import torch
            print_log(f'rank_watchdog is off: it needs TCPStore.check, which torch '
                      f'{torch.__version__} lacks (torch >= 2.2 has it). A lost rank stops this '
                      'job only when the process group times out.', logger='current',
                      level=logging.WARNING)
            return None
        watchdog = cls(dist.get_rank(), dist.get_world_size(), **settings)
        watchdog.start()
        return watchdog

    def start(self) -> None:
        """Start heartbeating and watching."""
        self._thread.start()

    def stop(self) -> None:
        """Sign off (this rank is done, not lost) and end the thread."""
        self._end_thread()
        # Without torchrun the store lives in rank 0, which may have finished and taken it
        # along; then nobody is left to watch this rank either.
        with contextlib.suppress(RuntimeError):
            self._store.set(self._key('signed_off', self.rank), '1')

    def after_error(self, error: BaseException) -> None:
        """Handle an exception that ends this rank's work.

        A collective broken by a peer that went away: wait for the thread to name the lost rank
        and exit the process (it does within ``timeout`` and an interval), so that the message
        names the cause. Any other error: post it, so that the other ranks stop at once and
        name this rank and its error instead of waiting for this rank in a collective.
        """
        if is_communication_error(error):
            time.sleep(self.timeout + 2 * self.interval)
            return
        self._end_thread()
        with contextlib.suppress(RuntimeError):
            self._post(self.rank, f'stopped with {type(error).__name__}: {error}')

    def _end_thread(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _key(self, *parts) -> str:
        return '/'.join((self._prefix, *map(str, parts)))

    def _post(self, rank: int, reason: str) -> None:
        self._store.set(self._key('lost'), f'{rank} {reason}')

    def _watch(self) -> None:
        peer = (self.rank + 1) % self.world_size
        peer_beats, peer_moved_at = -1, time.monotonic()
        store_answered_at = time.monotonic()
        while not self._stopping.is_set():
            now = time.monotonic()
            try:
                self._store.add(self._key('beat', self.rank), 1)
                if self._store.check([self._key('lost')]):
                    lost, reason = self._store.get(self._key('lost')).decode().split(' ', 1)
                    if int(lost) != self.rank:
                        self._exit(int(lost), reason)
                beats = self._store.add(self._key('beat', peer), 0)
                if beats != peer_beats:
                    peer_beats, peer_moved_at = beats, now
                elif (now - peer_moved_at >= self.timeout
                      and not self._store.check([self._key('signed_off', peer)])):
                    reason = (f'sent no heartbeat for {now - peer_moved_at:.0f} s '
                              f'(rank_watchdog.timeout={self.timeout:g}): it died or froze')
                    self._post(peer, reason)
                    self._exit(peer, reason)
                store_answered_at = now
            except RuntimeError as err:  # the store is unreachable or timed out
                if now - store_answered_at >= self.timeout:
                    self._exit(None, f'the rendezvous store at {self.address} has not answered '
                               f'for {now - store_answered_at:.0f} s ({err}): torchrun or rank 0, '
                               'which host it, is gone')
            self._stopping.wait(self.interval)

    def _process_of(self, rank: int) -> str:
        """Host and pid of ``rank``, as it registered them."""
        key = self._key('process', rank)
        try:
            return self._store.get(key).decode() if self._store.check([key]) else 'never seen'
        except RuntimeError:
            return 'process unknown'

    def _exit(self, lost: Optional[int], reason: str) -> None:
        """Log why this rank stops and end the process, even while its main thread is blocked
        in a collective that would otherwise wait for the process group timeout."""
        if lost is None:
            what = reason
        else:
            what = f'rank {lost} of {self.world_size} ({self._process_of(lost)}) {reason}'
        print_log(
            f'lost a rank: {what}. Rank {self.rank} stops now (exit code {LOST_RANK_EXIT_CODE}) '
            'instead of waiting for it in a collective. Find out what ended it (its log; the '
            'kernel log for the out-of-memory killer), then start the job again with --resume '
            'to continue from the last checkpoint.', logger='current', level=logging.ERROR)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(LOST_RANK_EXIT_CODE)

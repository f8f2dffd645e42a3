"""tools/analysis/plot_curves.py on synthetic MMEngine scalar logs: which run it picks, what it
draws for classification and detection logs, and its errors for a missing, empty or cut log and
for a key the log lacks."""
import json
import os

import pytest
from tool_scripts import load_tool

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


@pytest.fixture(scope='module')
def plot_curves():
    return load_tool('plot_curves', 'analysis')


def write_log(work_dir, timestamp, records):
    """``records`` as MMEngine's LocalVisBackend writes them; returns the log's path."""
    folder = work_dir / timestamp / 'vis_data'
    folder.mkdir(parents=True)
    path = folder / 'scalars.json'
    path.write_text(''.join(json.dumps(record) + '\n' for record in records))
    return path


def classification_records(epochs=4, iters_per_epoch=5, top1=(50.0, 70.0, 80.0, 90.0)):
    """Lines of an epoch-based run: training every iteration, validation every epoch."""
    records = []
    for epoch in range(1, epochs + 1):
        for step in range((epoch - 1) * iters_per_epoch + 1, epoch * iters_per_epoch + 1):
            records.append(dict(base_lr=1e-3 / step, lr=1e-3 / step, data_time=0.01,
                                loss=2.0 / step, time=0.1, epoch=epoch, iter=step, step=step))
        records.append({'accuracy/top1': top1[epoch - 1], 'accuracy/top5': 100.0,
                        'data_time': 0.01, 'time': 0.1, 'step': epoch})
    return records


def test_draws_loss_lr_and_accuracy_of_the_latest_run(plot_curves, tmp_path, capsys):
    write_log(tmp_path, '20260101_000000', classification_records(top1=(1.0, 2.0, 3.0, 4.0)))
    latest = write_log(tmp_path, '20260102_000000', classification_records())
    (tmp_path / '20260103_000000' / 'vis_data').mkdir(parents=True)  # a test run: no scalars

    out = plot_curves.main([str(tmp_path)])

    assert out == str(latest.parent / 'curves.png')
    with open(out, 'rb') as file:
        assert file.read(8) == PNG_SIGNATURE
    assert os.path.getsize(out) > 10_000
    printed = capsys.readouterr().out
    assert printed.splitlines() == [
        f'{latest}:',
        '  loss: 20 points, iteration 1 to 20, last 0.1',
        '  lr: 20 points, iteration 1 to 20, last 5e-05',
        '  accuracy/top1: 4 points, epoch 1 to 4, last 90',
        '  accuracy/top5: 4 points, epoch 1 to 4, last 100',
        f'saved {out}',
    ]


def test_detection_log_draws_the_coco_metrics_without_their_variants(plot_curves, tmp_path):
    records = [dict(lr=0.02, loss=3.0 - step / 10, loss_cls=1.0, loss_bbox=0.5, acc=90.0,
                    time=1.0, data_time=0.1, memory=900, iter=step, step=step)
               for step in range(1, 11)]
    records.append({'coco/bbox_mAP': 0.1, 'coco/bbox_mAP_50': 0.2, 'coco/segm_mAP': 0.05,
                    'data_time': 0.1, 'time': 1.0, 'step': 10})
    log = str(write_log(tmp_path, '20260101_000000', records))
    train, val = plot_curves.read_log(log)

    # iteration-based training: no 'epoch' in the training lines, validation at the iteration
    assert plot_curves.default_panels(train, val) == [
        ['loss', 'loss_cls', 'loss_bbox'], ['lr'], ['coco/bbox_mAP', 'coco/segm_mAP']]
    drawn = plot_curves.plot(log, None, str(tmp_path / 'det.png'))
    assert 'coco/bbox_mAP: 1 point, iteration 10 to 10, last 0.1' in drawn
    assert plot_curves.plot(log, ['coco/bbox_mAP_50'], str(tmp_path / 'map50.png')) == [
        'coco/bbox_mAP_50: 1 point, iteration 10 to 10, last 0.2']
    assert (tmp_path / 'det.png').stat().st_size > 0


def test_keys_draws_exactly_those(plot_curves, tmp_path, capsys):
    log = write_log(tmp_path, '20260101_000000', classification_records())
    out = tmp_path / 'top1.png'
    plot_curves.main([str(log), '--keys', 'accuracy/top1', 'data_time', '--out', str(out)])
    assert capsys.readouterr().out.splitlines()[1:] == [
        '  accuracy/top1: 4 points, epoch 1 to 4, last 90',
        '  data_time: 20 points, iteration 1 to 20, last 0.01',
        f'saved {out}',
    ]
    assert out.stat().st_size > 0


def test_a_key_the_log_lacks_names_the_keys_it_has(plot_curves, tmp_path):
    log = write_log(tmp_path, '20260101_000000', classification_records())
    with pytest.raises(KeyError, match='has no coco/bbox_mAP; its keys: base_lr, lr, '
                       'data_time, loss, time, epoch, iter, accuracy/top1, accuracy/top5'):
        plot_curves.main([str(tmp_path), '--keys', 'loss', 'coco/bbox_mAP'])
    assert not (log.parent / 'curves.png').exists()


def test_a_work_dir_without_a_log(plot_curves, tmp_path):
    (tmp_path / '20260101_000000' / 'vis_data').mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match='holds no scalar log .*LocalVisBackend'):
        plot_curves.main([str(tmp_path)])
    with pytest.raises(FileNotFoundError, match='neither a work dir nor a scalars.json'):
        plot_curves.main([str(tmp_path / 'absent')])


def test_an_empty_log(plot_curves, tmp_path):
    write_log(tmp_path, '20260101_000000', [])
    with pytest.raises(ValueError, match=r'scalars.json is empty: .*logger.interval'):
        plot_curves.main([str(tmp_path)])


def test_a_log_with_nothing_to_draw_by_default(plot_curves, tmp_path):
    write_log(tmp_path, '20260101_000000', [dict(time=0.1, iter=1, step=1)])
    with pytest.raises(ValueError, match='no loss, lr or validation metric .*: time, iter'):
        plot_curves.main([str(tmp_path)])


def test_a_cut_last_line_is_named(plot_curves, tmp_path):
    log = write_log(tmp_path, '20260101_000000', classification_records())
    with open(log, 'a') as file:
        file.write('{"lr": 0.001, "lo')
    with pytest.raises(ValueError, match='line 25, is not JSON .*delete it'):
        plot_curves.main([str(tmp_path / '20260101_000000')])

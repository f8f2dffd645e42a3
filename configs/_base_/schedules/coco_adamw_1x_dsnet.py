# MMDetection's 1x schedule (12 epochs; linear warm-up over 500 iterations from 1e-3 of the lr;
# lr x 0.1 after epochs 8 and 11; lr set for a total batch of 16, auto_scale_lr.base_batch_size)
# with AdamW, as transformer backbones are fine-tuned for detection.
_base_ = 'mmdet::_base_/schedules/schedule_1x.py'

optim_wrapper = dict(
    optimizer=dict(
        _delete_=True, type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    # No weight decay on norms, biases and DSNet's conditional position encodings.
    paramwise_cfg=dict(
        norm_decay_mult=0.,
        bias_decay_mult=0.,
        custom_keys={'position_encoding': dict(decay_mult=0.)}))

"""Run PaddleClas' DSNet on a fixed input and save its weights and outputs (parity reference).

    PYTHON_WITH_PADDLE paddle_dsnet_reference.py ARCH OUT_DIR

Writes OUT_DIR/model.pdparams and OUT_DIR/reference.npz (input, stage1..stage4, logits), where
stage4 is taken after the final BatchNorm as mmdsnet's stage-4 output is. PaddleClas' default
init makes activations explode (logits ~1e13), so every parameter and BatchNorm statistic is
redrawn at a scale that keeps them O(1).
"""
import sys

import numpy as np
import paddle
from paddleclas.ppcls.arch.backbone.model_zoo import dsnet

GAIN = 0.5  # of a unit-variance init: activations stay within O(10) through all 18 blocks


def scaled_random_init(model, seed=0):
    rng = np.random.default_rng(seed)
    for name, tensor in model.state_dict().items():
        shape = tensor.shape
        if name.endswith('_variance'):
            value = rng.uniform(0.5, 1.5, shape)
        elif name.endswith('_mean'):
            value = rng.normal(0, 0.1, shape)
        elif name.endswith('.weight') and len(shape) == 1:  # BatchNorm / LayerNorm scale
            value = 1 + rng.normal(0, 0.1, shape)
        elif name.endswith('.bias'):
            value = rng.normal(0, 0.02, shape)
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) == 4 else shape[0]
            value = rng.normal(0, GAIN / np.sqrt(fan_in), shape)
        tensor.set_value(value.astype('float32'))


def main(arch, out_dir):
    paddle.set_device('cpu')
    model = getattr(dsnet, f'DSNet_{arch}')()
    scaled_random_init(model)
    model.eval()
    image = np.random.default_rng(1).normal(0, 1, (2, 3, 224, 224)).astype('float32')
    outputs = {'input': image}
    with paddle.no_grad():
        x = paddle.to_tensor(image)
        for stage in range(1, 5):
            x = getattr(model, f'patch_embed{stage}')(x)
            for block in getattr(model, f'blocks{stage}'):
                x = block(x)
            if stage == 4:
                x = model.norm(x)
            outputs[f'stage{stage}'] = x.numpy()
        outputs['logits'] = model(paddle.to_tensor(image)).numpy()
    paddle.save(model.state_dict(), f'{out_dir}/model.pdparams')
    np.savez(f'{out_dir}/reference.npz', **outputs)


if __name__ == '__main__':
    main(*sys.argv[1:3])

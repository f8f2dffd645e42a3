"""MMEngine's ``compile`` switch, compiling what pays and training the rest eagerly."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ..compile import (cannot_compile_reason, compile_backbone, compile_options,
                       use_persistent_caches)


@HOOKS.register_module()
class CompileHook(Hook):
    """Take over the config's ``compile`` (``True`` or a dict of ``torch.compile`` arguments,
    also through ``--cfg-options compile=True``): compile the model's backbone when training
    starts, and keep MMEngine from compiling its whole ``train_step``, which fails on the
    optimizer step (:mod:`mmdsnet.engine.compile`).

    - The compiled backbone serves training and the validation during training; as in MMEngine,
      ``tools/test.py`` runs eagerly.
    - Batches of new shapes (detection pads each batch to its own size; an epoch's last batch
      may be smaller) cost one more compile, after which dynamo treats batch size, height and
      width as dynamic: two compiles per mode (training, evaluation), three if a batch holds
      one image.
    - Inductor's caches go to one directory per machine (:func:`use_persistent_caches`), so a
      resumed job and every rank reuse what an earlier run compiled.
    - Where torch cannot compile (no C++ compiler, no Triton, an unsupported Python), one
      warning says why and the run trains eagerly.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self.compile_kwargs = None

    def before_run(self, runner) -> None:
        self.compile_kwargs = compile_options(runner.cfg.get('compile'))
        if self.compile_kwargs is not None:
            # Runner.train reads cfg.compile after every before_run hook (_maybe_compile).
            runner.cfg.compile = False

    def before_train(self, runner) -> None:
        if self.compile_kwargs is None:
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        device = next(model.parameters()).device
        reason = cannot_compile_reason(self.compile_kwargs, device)
        if reason is not None:
            runner.logger.warning(f'compile={self.compile_kwargs or True} is ignored and the '
                                  f'model trains eagerly: {reason}')
            return
        cache_dir = use_persistent_caches()
        compile_backbone(model, self.compile_kwargs)
        runner.logger.info(
            f'Compiled the backbone ({type(model.backbone).__name__}) of {type(model).__name__} '
            f'with torch.compile('
            f'{", ".join(f"{k}={v!r}" for k, v in self.compile_kwargs.items())}); the first '
            'iterations of training and of validation compile it (minutes for a large model; '
            f'much less when its kernels are in the cache at {cache_dir}).')

"""Training loops that alternate the two players of UnSeg's min-min game.

The phase is a pure function of the epoch (or iteration) counter, so a resumed
run continues in exactly the phase it stopped in.
"""
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop, Runner

from mmunseg.registry import LOOPS
from ..models.unseg import PHASES
from ..utils.model_wrappers import unwrap


class BilevelSchedule:
    """``surrogate`` steps, then ``generator`` steps, repeated.

    Args:
        surrogate (int): Consecutive surrogate epochs (or iterations).
        generator (int): Consecutive generator epochs (or iterations).
    """

    def __init__(self, surrogate=1, generator=3):
        if not (isinstance(surrogate, int) and isinstance(generator, int)
                and surrogate >= 1 and generator >= 1):
            raise ValueError('surrogate and generator steps of the bilevel '
                             'schedule must be integers >= 1, got '
                             f'{surrogate} and {generator}')
        self.surrogate = surrogate
        self.generator = generator

    def phase(self, step: int) -> str:
        """The phase of the 0-based epoch or iteration ``step``."""
        cycle = self.surrogate + self.generator
        return 'surrogate' if step % cycle < self.surrogate else 'generator'

    def count(self, phase: str, total: int) -> int:
        """How many of the first ``total`` steps belong to ``phase``."""
        return sum(self.phase(step) == phase for step in range(total))


def enter_phase(runner: Runner, phase: str, step: int, unit: str) -> None:
    """Switch the model's phase and keep the logs free of stale losses."""
    model = unwrap(runner.model)
    if model.phase != phase or step == 0:
        print_log(
            f'bilevel: {unit} {step + 1} trains the {phase}', logger='current')
    model.set_phase(phase)
    runner.message_hub.update_info('bilevel_phase', phase)
    # The other player's smoothed losses would be printed unchanged for the
    # whole phase; drop them so each log line shows live values only.
    other = [p for p in PHASES if p != phase][0]
    scalars = runner.message_hub.log_scalars
    for key in [k for k in scalars if k.startswith(f'train/{other}_')]:
        scalars.pop(key)


@LOOPS.register_module()
class BilevelEpochBasedTrainLoop(EpochBasedTrainLoop):
    """Epoch-based min-min loop (the paper: 1 surrogate epoch, then 3
    generator epochs, 27 epochs).

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The training dataloader.
        max_epochs (int): Total epochs, both phases together.
        surrogate_epochs (int): Surrogate epochs per cycle.
        generator_epochs (int): Generator epochs per cycle.
        **kwargs: ``val_begin``, ``val_interval``, ``dynamic_intervals``.
    """

    def __init__(self,
                 runner,
                 dataloader,
                 max_epochs,
                 surrogate_epochs=1,
                 generator_epochs=3,
                 **kwargs):
        super().__init__(runner, dataloader, max_epochs, **kwargs)
        self.schedule = BilevelSchedule(surrogate_epochs, generator_epochs)

    def run_epoch(self) -> None:
        enter_phase(self.runner, self.schedule.phase(self._epoch), self._epoch,
                    'epoch')
        super().run_epoch()


@LOOPS.register_module()
class BilevelIterBasedTrainLoop(IterBasedTrainLoop):
    """Iteration-based min-min loop: phases alternate by iterations.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The training dataloader.
        max_iters (int): Total iterations, both phases together.
        surrogate_iters (int): Surrogate iterations per cycle.
        generator_iters (int): Generator iterations per cycle.
        **kwargs: ``val_begin``, ``val_interval``, ``dynamic_intervals``.
    """

    def __init__(self,
                 runner,
                 dataloader,
                 max_iters,
                 surrogate_iters=1,
                 generator_iters=3,
                 **kwargs):
        super().__init__(runner, dataloader, max_iters, **kwargs)
        self.schedule = BilevelSchedule(surrogate_iters, generator_iters)

    def run_iter(self, data_batch: dict) -> None:
        enter_phase(self.runner, self.schedule.phase(self._iter), self._iter,
                    'iteration')
        super().run_iter(data_batch)

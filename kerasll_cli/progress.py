"""`ClickProgress`: an experiment's progress on the terminal."""

import sys

import click


class ClickProgress:
    """An `ExperimentListener`: a progress bar per cycle, one line at its end.

    Args:
        echo: a callable printing one line.
        model_note: a line saying which model was chosen and why, printed
            once every input is valid (None: nothing).
    """

    def __init__(self, echo=click.echo, model_note=None):
        self.echo = echo
        self.model_note = model_note
        self._bar = None
        self._metric = "accuracy"

    def experiment_started(self, config, task, out_dir):
        self._metric = task.metric_name
        self.echo(task.describe())
        if self.model_note:
            self.echo(self.model_note)
        self.echo(
            f"{', '.join(config.strategies)}: {config.trials} trial(s) x "
            f"{config.cycles} cycles, {config.training.epochs} epochs each; "
            f"results in {out_dir}/"
        )

    def cycle_started(self, strategy, trial, cycle, labeled, epochs):
        label = f"{strategy} trial {trial} cycle {cycle} ({labeled} labels)"
        self._bar = click.progressbar(length=epochs, label=label, file=sys.stderr)
        self._bar.__enter__()

    def epoch_finished(self, epoch, logs):
        if self._bar is not None:
            self._bar.update(1)

    def cycle_finished(self, record, resumed=False):
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
        rank = "-" if record.rank_accuracy is None else f"{record.rank_accuracy:.3f}"
        timing = "resumed" if resumed else f"{record.seconds:.1f}s"
        self.echo(
            f"{record.strategy:<22} trial {record.trial}  cycle {record.cycle}  "
            f"labeled {record.labeled:>6}  {self._metric} {record.metric:.4f}  "
            f"rank accuracy {rank}  {timing}"
        )

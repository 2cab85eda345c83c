"""`kerasll-score`: the command-line face of `PoolScorer` (also `kerasll score`).

A thin click layer: click types validate the arguments, and every error the
library raises on purpose (a `ServingError`) becomes a one-line
`click.ClickException` (exit code 1, no traceback); click's usage errors are
one line too (exit code 2, `OneLineUsageCommand`). `--stream` selects from
arrivals instead of ranking a pool (`kerasll_serving.streaming`).
"""

import warnings

import click

from kerasll_serving.errors import ServingError, first_line
from kerasll_serving.gallery import MAX_IMAGES
from kerasll_serving.predictions import DISPLAY_THRESHOLD
from kerasll_serving.session import PROVIDER_CHOICES

_PATH = click.Path(dir_okay=False, writable=True)
# Options of one mode only: given in the other, they are refused.
_POOL_ONLY = ("k", "checkpoint_every", "all_scores", "picks_image", "engine",
              "ray_address", "num_actors")
_STREAM_ONLY = ("rate", "per_hour", "window", "poll", "idle_timeout")
DEFAULT_RATE = 0.01


class OneLineUsageCommand(click.Command):
    """A command whose usage errors are one line, `Error: <message>`, keeping
    their exit code (2): no usage and "Try --help" lines. (`kerasll score`
    shows them the same way through `kerasll_cli.one_line_usage`.)"""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as error:
            raise _one_line(error) from error

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as error:
            raise _one_line(error) from error


def _one_line(error):
    shown = click.ClickException(error.format_message())
    shown.exit_code = error.exit_code
    return shown


@click.command(name="score", cls=OneLineUsageCommand)
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.argument("pool", type=click.Path(exists=True, allow_dash=True))
@click.option("--k", type=click.IntRange(min=1), default=100, show_default=True,
              help="How many items to pick.")
@click.option("--out", type=_PATH, required=True,
              help="Picks file, .csv or .jsonl (skipped items go to "
                   "OUT.errors.csv).")
@click.option("--batch-size", type=click.IntRange(min=1), default=256,
              show_default=True, help="Items per inference call.")
@click.option("--provider", "--providers", "providers",
              type=click.Choice(PROVIDER_CHOICES, case_sensitive=False),
              default="auto", show_default=True,
              help="Execution provider; auto = a GPU that loads, else CPU. An "
                   "explicit one that is absent or fails to load is an error.")
@click.option("--threads", type=click.IntRange(min=0), default=0, show_default=True,
              help="onnxruntime intra-op threads (0 = its default).")
@click.option("--resume", is_flag=True,
              help="Continue from the checkpoint next to OUT.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=10,
              show_default=True, help="Save the checkpoint every N batches.")
@click.option("--all-scores", type=_PATH, default=None,
              help="Also write every item's score here (.csv or .jsonl).")
@click.option("--picks-image", type=_PATH, default=None,
              help=f"Also draw the picks (the first {MAX_IMAGES}) as a .png grid "
                   "here: rank, predicted loss, and a classifier's class or a "
                   f"detector's boxes scoring above {DISPLAY_THRESHOLD}.")
@click.option("--quiet", is_flag=True, help="No progress bar, provider or summary.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local",
              show_default=True, help="Score in this process or on Ray.")
@click.option("--ray-address", default=None,
              help="Ray cluster to join: auto or ray://HOST:10001 (--engine ray).")
@click.option("--num-actors", type=click.IntRange(min=1), default=None,
              help="Ray scoring actors (--engine ray; default one per GPU, or 1).")
@click.option("--audit", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also write a uniform random sample of this many pool items "
                   "to OUT (role column: pick, audit or pick+audit).")
@click.option("--seed", type=click.IntRange(min=0, max=2 ** 64 - 1), default=0,
              show_default=True, help="Seed of the --audit sample.")
@click.option("--stream", is_flag=True,
              help="Select from arrivals: POOL is a folder watched for new images, "
                   "or - for image paths on stdin; each item is kept or not as it "
                   "comes (--resume continues after a kill).")
@click.option("--rate", type=click.FloatRange(min=0, max=1, min_open=True),
              default=None, help=f"--stream: share of items to keep "
                                 f"(default {DEFAULT_RATE} unless --per-hour).")
@click.option("--per-hour", type=click.FloatRange(min=0, min_open=True),
              default=None, help="--stream: items to keep per hour instead of a rate.")
@click.option("--window", type=click.IntRange(min=2), default=2000, show_default=True,
              help="--stream: recent scores the threshold is the quantile of.")
@click.option("--poll", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="--stream: seconds between looks at the folder.")
@click.option("--idle-timeout", type=click.FloatRange(min=0), default=60.0,
              show_default=True,
              help="--stream on a folder: stop after this many seconds without "
                   "a new file (stdin streams end with their input).")
@click.pass_context
def main(context, model, pool, k, out, batch_size, providers, threads, resume,
         checkpoint_every, all_scores, picks_image, quiet, engine, ray_address,
         num_actors, audit, seed, stream, rate, per_hour, window, poll, idle_timeout):
    """Scores the unlabeled POOL with MODEL and writes the K items with the
    highest predicted loss to OUT.

    POOL is a directory of images (.jpg, .jpeg, .png, .bmp, .gif, .tif,
    .tiff, .webp), a .npy or .npz array, or a .txt file listing image paths.
    With --stream, POOL is a folder of arriving images or - (stdin).
    """
    if engine != "ray" and (ray_address is not None or num_actors is not None):
        raise click.UsageError("--ray-address and --num-actors need --engine ray.")
    _check_mode(context, stream, pool)
    from kerasll_serving.scorer import PoolScorer

    try:
        scorer = PoolScorer(model, providers=providers.lower(), batch_size=batch_size,
                            threads=threads or None)
        if stream:
            from kerasll_serving.selector import StreamSelector

            selector = StreamSelector(
                DEFAULT_RATE if rate is None and per_hour is None else rate,
                per_hour=per_hour, window=window,
                reference=scorer.contract.predicted_loss_quantiles,
                audit=audit, seed=seed)
        if not quiet:
            click.echo(scorer.model.describe_provider(), err=True)
        if stream:
            result = scorer.stream(pool, selector, out=out, resume=resume, poll=poll,
                                   idle_timeout=idle_timeout)
            if not quiet:
                click.echo(result.summary(), err=True)
            return
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            result = scorer.score(
                pool, k, out=out, all_scores=all_scores, picks_image=picks_image,
                resume=resume, checkpoint_every=checkpoint_every,
                progress=False if quiet else None,
                engine=engine, ray_address=ray_address, num_actors=num_actors,
                audit=audit, seed=seed,
            )
    except ServingError as error:
        raise click.ClickException(first_line(error)) from None
    for warning in caught:
        click.echo(f"Warning: {warning.message}", err=True)
    if not quiet:
        click.echo(result.summary(), err=True)


def _check_mode(context, stream, pool):
    """Refuses options of the other mode, and "-" outside --stream."""
    given = [name for name in (_POOL_ONLY if stream else _STREAM_ONLY)
             if context.get_parameter_source(name)
             is not click.core.ParameterSource.DEFAULT]
    if given:
        options = ", ".join("--" + name.replace("_", "-") for name in given)
        mode = "pools (without --stream)" if stream else "--stream"
        raise click.UsageError(f"{options}: only for {mode}.")
    if pool == "-" and not stream:
        raise click.UsageError("POOL '-' (paths on stdin) needs --stream.")

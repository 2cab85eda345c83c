"""`kerasll-score`: the command-line face of `PoolScorer` (also `kerasll score`).

A thin click layer: click types validate the arguments, and every error the
library raises on purpose (a `ServingError`) becomes a one-line
`click.ClickException` (exit code 1, no traceback).
"""

import warnings

import click

from kerasll_serving.errors import ServingError, first_line
from kerasll_serving.gallery import MAX_IMAGES
from kerasll_serving.predictions import DISPLAY_THRESHOLD
from kerasll_serving.session import PROVIDER_CHOICES

_PATH = click.Path(dir_okay=False, writable=True)


@click.command(name="score")
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.argument("pool", type=click.Path(exists=True))
@click.option("--k", type=click.IntRange(min=1), default=100, show_default=True,
              help="How many items to pick.")
@click.option("--out", type=_PATH, required=True,
              help="Picks file, .csv or .jsonl (skipped items go to "
                   "OUT.errors.csv).")
@click.option("--batch-size", type=click.IntRange(min=1), default=256,
              show_default=True, help="Items per inference call.")
@click.option("--providers", type=click.Choice(PROVIDER_CHOICES, case_sensitive=False),
              default="auto", show_default=True,
              help="Execution provider; auto = a GPU that loads, else CPU.")
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
def main(model, pool, k, out, batch_size, providers, threads, resume,
         checkpoint_every, all_scores, picks_image, quiet, engine, ray_address,
         num_actors, audit, seed):
    """Scores the unlabeled POOL with MODEL and writes the K items with the
    highest predicted loss to OUT.

    POOL is a directory of images (.jpg, .jpeg, .png, .bmp, .gif, .tif,
    .tiff, .webp), a .npy or .npz array, or a .txt file listing image paths.
    """
    if engine != "ray" and (ray_address is not None or num_actors is not None):
        raise click.UsageError("--ray-address and --num-actors need --engine ray.")
    from kerasll_serving.scorer import PoolScorer

    try:
        scorer = PoolScorer(model, providers=providers.lower(), batch_size=batch_size,
                            threads=threads or None)
        if not quiet:
            click.echo(scorer.model.describe_provider(), err=True)
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

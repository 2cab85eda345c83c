"""`results.csv`: one row per `CycleRecord`, written and read back.

The columns are `CycleRecord`'s fields in its order, but the wall time
(`seconds`): the file holds deterministic content only, so a resumed run
writes the same file as an uninterrupted one. The metric's column is named
by the task's `Metric` (`accuracy`, `map50`). A task's secondary metrics
(`CycleRecord.secondary_metrics`) follow, one column each (`oks_ap`), named
by their keys in the order the records first hold them.
"""

import collections
import csv
import dataclasses
import io

from kerasll_serving.atomic import write_text

from kerasll.active.state import CycleRecord

RESULTS_FILE = "results.csv"

Metric = collections.namedtuple("Metric", ["name", "column"])
Metric.__doc__ = """The task metric a `CycleRecord.metric` holds.

Attributes:
    name: how tables and plots call it ("accuracy", "mAP@0.5").
    column: its results.csv column ("accuracy", "map50").
"""
ACCURACY = Metric("accuracy", "accuracy")

_SECONDARY = "secondary_metrics"
_FIELDS = [
    f for f in dataclasses.fields(CycleRecord) if f.name not in ("seconds", _SECONDARY)
]
_PARSERS = {
    str: str,
    int: int,
    float: float,
    bool: lambda text: text == "True",
    list: lambda text: [int(count) for count in text.split()],
}


def _column(field, metric):
    return metric.column if field.name == "metric" else field.name


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(count) for count in value)
    return value


def secondary_columns(records):
    """The secondary metrics' columns the records hold, in first-seen order."""
    columns = {}
    for record in records:
        columns.update(dict.fromkeys(record.secondary_metrics or ()))
    return list(columns)


def write_results_csv(records, path, metric=ACCURACY):
    """Writes one row per cycle record (class histograms as space-separated counts).

    Args:
        records: `CycleRecord`s.
        path: target file.
        metric: the task `Metric`; its column holds `CycleRecord.metric`.
    """
    secondary = secondary_columns(records)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([_column(field, metric) for field in _FIELDS] + secondary)
    for record in records:
        values = record.secondary_metrics or {}
        writer.writerow(
            [_cell(getattr(record, field.name)) for field in _FIELDS]
            + [_cell(values.get(column)) for column in secondary]
        )
    write_text(path, buffer.getvalue())


def read_results_csv(path, metric=ACCURACY):
    """Reads a `results.csv` back into `CycleRecord`s (timings are 0).

    An empty cell, or a column the file lacks (written before the field
    existed), gives the field's default. Columns beyond the record's fields
    are secondary metrics.

    Args:
        path: the file.
        metric: the task `Metric` the file was written with.

    Returns:
        The `CycleRecord`s, in the file's order.

    Raises:
        ValueError: the file has no column for `metric`.
    """
    records = []
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if metric.column not in (reader.fieldnames or ()):
            raise ValueError(
                f"Expected a {metric.column!r} column ({metric.name}) in "
                f"{str(path)!r}. Received columns {reader.fieldnames}; pass the "
                "task's metric"
            )
        known = {_column(field, metric) for field in _FIELDS}
        secondary = [name for name in reader.fieldnames if name not in known]
        for row in reader:
            values = {}
            for field in _FIELDS:
                text = row.get(_column(field, metric))
                if text:
                    values[field.name] = _PARSERS[field.type](text)
            metrics = {name: float(row[name]) for name in secondary if row[name]}
            records.append(CycleRecord(**values, secondary_metrics=metrics or None))
    return records


def group_runs(records):
    """The records by run.

    Args:
        records: `CycleRecord`s.

    Returns:
        {strategy: {trial: [records sorted by cycle]}}, strategies and
        trials in first-seen order.
    """
    runs = {}
    for record in records:
        runs.setdefault(record.strategy, {}).setdefault(record.trial, []).append(record)
    for trials in runs.values():
        for trial in trials:
            trials[trial].sort(key=lambda r: r.cycle)
    return runs

"""results.csv I/O (`kerasll.active.records`) and the Markdown built from records."""

import os
import stat

import pytest

from kerasll.active.records import (
    ACCURACY,
    Metric,
    group_runs,
    read_results_csv,
    write_results_csv,
)
from kerasll.active.state import CycleRecord
from kerasll.active.summary import final_table, format_summary

MAP50 = Metric("mAP@0.5", "map50")
HEADER = (
    "strategy,trial,cycle,labeled,{metric},rank_accuracy,head_spearman,"
    "entropy_spearman,warm_start,head_share,pick_histogram,pick_class_entropy,"
    "pick_loss,random_loss,pick_distance,random_distance,balanced_accuracy,"
    "worst_class_recall,duplicate_picks"
)


def _records():
    return [
        CycleRecord(
            "learning_loss_safe", 0, 0, 10, 0.5, rank_accuracy=0.625,
            head_spearman=0.25, entropy_spearman=-0.125, seconds=3.5,
            head_share=0.0, pick_histogram=[3, 0, 2], pick_class_entropy=0.75,
            pick_loss=1.5, random_loss=1.25, pick_distance=2.0,
            random_distance=2.5, balanced_accuracy=0.5, worst_class_recall=0.25,
            duplicate_picks=1,
        ),
        CycleRecord("learning_loss_safe", 0, 1, 15, 0.75, warm_start=True),
        CycleRecord("random", 0, 0, 10, 0.5),
        CycleRecord("random", 0, 1, 15, 0.625),
    ]


@pytest.mark.parametrize("metric", [ACCURACY, MAP50])
def test_results_csv_round_trips_every_field_but_the_wall_time(tmp_path, metric):
    path = tmp_path / "results.csv"
    write_results_csv(_records(), path, metric)
    lines = path.read_text().splitlines()
    assert lines[0] == HEADER.format(metric=metric.column)
    assert lines[1].endswith(",0.0,3 0 2,0.75,1.5,1.25,2.0,2.5,0.5,0.25,1")
    assert lines[2] == "learning_loss_safe,0,1,15,0.75,,,,True,,,,,,,,,,"
    expected = [
        CycleRecord(**{**record.to_dict(), "seconds": 0.0}) for record in _records()
    ]
    assert read_results_csv(path, metric) == expected


def test_a_missing_metric_column_is_named_and_old_columns_default(tmp_path):
    path = tmp_path / "results.csv"
    write_results_csv(_records(), path, MAP50)
    with pytest.raises(ValueError, match=r"'accuracy' column \(accuracy\)"):
        read_results_csv(path)
    # A file written before duplicate_picks existed reads it as None.
    old = tmp_path / "old.csv"
    old.write_text(
        "strategy,trial,cycle,labeled,accuracy,warm_start\nrandom,1,0,10,0.5,False\n"
    )
    assert read_results_csv(old) == [CycleRecord("random", 1, 0, 10, 0.5)]


def test_records_group_by_strategy_and_trial_in_cycle_order():
    shuffled = _records()[::-1]
    runs = group_runs(shuffled)
    assert list(runs) == ["random", "learning_loss_safe"]
    assert [r.cycle for r in runs["learning_loss_safe"][0]] == [0, 1]


def test_the_final_table_is_built_from_records_and_heads_the_summary():
    table = final_table(_records())
    assert table[0] == (
        "| strategy | final (mean ± std) | trial 0 | area under curve | "
        "first cycle | rank accuracy |"
    )
    assert table[2] == (
        "| learning_loss_safe | 0.7500 | 0.7500 | 0.6250 | 0.5000 | - |"
    )
    assert table[3] == "| random | 0.6250 | 0.6250 | 0.5625 | 0.5000 | - |"
    summary = format_summary(_records(), "An experiment.", MAP50)
    assert "## Test mAP@0.5 after the last cycle (15 labels)\n\n" + "\n".join(
        table
    ) in summary


def _with_oks(records, values):
    return [
        CycleRecord(**{**r.to_dict(), "secondary_metrics": {"oks_ap": v}})
        for r, v in zip(records, values)
    ]


def test_secondary_metrics_are_columns_after_the_fields_and_read_back(tmp_path):
    records = _with_oks(_records(), [0.25, 0.5, 0.125, 0.375])
    path = tmp_path / "results.csv"
    write_results_csv(records, path, Metric("PCKh@0.5", "pckh"))
    lines = path.read_text().splitlines()
    assert lines[0] == HEADER.format(metric="pckh") + ",oks_ap"
    assert lines[2] == "learning_loss_safe,0,1,15,0.75,,,,True,,,,,,,,,,,0.5"
    expected = [
        CycleRecord(**{**record.to_dict(), "seconds": 0.0}) for record in records
    ]
    assert read_results_csv(path, Metric("PCKh@0.5", "pckh")) == expected
    # A record without the metric leaves its cell empty and reads back None.
    write_results_csv(records[:2] + _records()[2:], path, ACCURACY)
    again = read_results_csv(path)
    assert [r.secondary_metrics for r in again] == [
        {"oks_ap": 0.25}, {"oks_ap": 0.5}, None, None,
    ]


def test_a_state_saved_before_secondary_metrics_loads_them_as_none():
    saved = _records()[1].to_dict()
    del saved["secondary_metrics"]
    assert CycleRecord.from_dict(saved).secondary_metrics is None


def test_the_summary_pairs_secondary_metrics_with_random_too():
    records = _with_oks(_records(), [0.25, 0.5, 0.125, 0.375])
    summary = format_summary(
        records,
        metric=Metric("PCKh@0.5", "pckh"),
        secondary=[Metric("OKS AP", "oks_ap")],
    )
    assert "## Test OKS AP after the last cycle" in summary
    assert "## Test OKS AP per cycle (mean ± std over trials)" in summary
    assert "| learning_loss_safe | 0.2500 | 0.5000 |" in summary
    paired = summary.split("## Paired difference to `random` in OKS AP")[1]
    # Final OKS AP 0.5 against random's 0.375.
    assert "| learning_loss_safe | +0.1250 |" in paired
    # The primary metric's table stays first and unchanged.
    assert summary.index("## Paired difference to `random` (") < summary.index(
        "in OKS AP"
    )
    # Unnamed secondary metrics are named by their column.
    assert "## Test oks_ap per cycle" in format_summary(records)


def test_results_csv_gets_the_mode_of_an_ordinary_new_file(tmp_path):
    previous = os.umask(0o022)
    try:
        write_results_csv([], tmp_path / "results.csv")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(tmp_path / "results.csv").st_mode) == 0o644

"""The command layer's refusals: the library's rules and messages, one line."""

import pytest


def _lines(result):
    return [line for line in result.output.splitlines() if line.strip()]


# kerasll project train: the library's rules and messages (one line, exit 1) --

PROJECT_TRAIN_BAD = [
    (["--width", "nan"], "Expected width to be a finite number > 0"),
    (["--width", "0"], "Received: width=0.0"),
    (["--batch-size", "0"], "Expected batch_size to be an integer >= 1"),
    # The project's own rule: its loss head learns from pairs within a batch.
    (["--batch-size", "1"], "Expected batch_size to be an integer >= 2. Received: "
     "batch_size=1 (the loss head learns from pairs of items within a batch)"),
    (["--epochs", "0"], "Expected epochs to be an integer >= 1"),
    (["--learning-rate", "-1"], "Expected learning_rate to be a finite number > 0"),
    (["--model", "ssd"], "Expected a classification model in"),
]


@pytest.mark.parametrize("extra, message", PROJECT_TRAIN_BAD)
def test_project_train_refuses_bad_values_with_the_librarys_message(
    tmp_path, extra, message
):
    from click.testing import CliRunner
    from kerasll_cli import main

    project = tmp_path / "project"
    created = CliRunner().invoke(main, ["project", "init", str(project),
                                        "--classes", "a,b"])
    assert created.exit_code == 0, created.output
    result = CliRunner().invoke(main, ["project", "train", str(project), *extra])
    assert result.exit_code == 1, result.output
    assert len(_lines(result)) == 1 and message in result.output, result.output
    assert not (project / "models").exists()


def test_a_projects_batch_size_rule_is_the_librarys():
    """training_config refuses a batch of 1 itself (no rule in the CLI)."""
    from kerasll.project.errors import ProjectError
    from kerasll.project.model_versions import training_config

    assert training_config("classification", batch_size=2).batch_size == 2
    with pytest.raises(ProjectError, match="learns from pairs"):
        training_config("classification", batch_size=1)

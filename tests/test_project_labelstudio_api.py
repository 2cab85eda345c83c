"""`tasks --label-studio` without a server: which folders it connects, and
one-line errors before any file is written."""

import socket

from project_helpers import CLASSES, cli, write_digits

from kerasll.project.labelstudio_api import image_folders


def test_image_folders_are_the_fewest_that_hold_every_image():
    paths = ["/data/cam1/a.png", "/data/cam1/b.png", "/data/cam1/night/c.png",
             "/data/cam2/d.png", "/data/cam10/e.png"]
    assert image_folders(paths) == ["/data/cam1", "/data/cam10", "/data/cam2"]


def _closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_tasks_for_label_studio_refuse_bad_options_and_no_server(tmp_path):
    write_digits(tmp_path / "captures", {"cam": range(10)})
    project = tmp_path / "project"
    for args in [("init", project, "--classes", CLASSES),
                 ("add", project, tmp_path / "captures" / "cam"),
                 ("select", project, "--k", "4", "--random")]:
        assert cli(*args).exit_code == 0
    url = f"http://127.0.0.1:{_closed_port()}"

    partial = cli("tasks", project, "--label-studio", url, "--ls-project", "1")
    assert partial.exit_code == 2 and "together" in partial.output
    as_csv = cli("tasks", project, "--format", "csv", "--label-studio", url,
                 "--token", "t", "--ls-project", "1")
    assert as_csv.exit_code == 2 and "--format label-studio" in as_csv.output
    down = cli("tasks", project, "--label-studio", url, "--token", "t",
               "--ls-project", "1")
    assert down.exit_code == 1
    assert down.output.startswith(f"Error: Expected Label Studio at {url}")
    assert len(down.output.strip().splitlines()) == 1
    assert not (project / "tasks").exists()

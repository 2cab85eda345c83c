"""A round trip through a real Label Studio server.

The `label-studio` package lives in its own virtual environment
(`make label-studio`; its pins clash with TensorFlow's). The session's server
(tests/conftest.py, shared with tests/test_project_labelstudio_regions.py)
runs on 127.0.0.1 on a free port with a temporary data folder and local
files served as the README says. The test creates a project through the
REST API with the project's labeling config, runs `kerasll project tasks
--label-studio` (which connects the images' folder and imports the tasks
with the model's pre-annotations; a second run imports nothing), loads a
task's image through the server as a logged-in browser does, submits one
annotation per task through the API, exports JSON, imports the export into
the kerasll project (twice: the second import changes nothing).

It skips, printing why, only when the package cannot be installed.
"""

import http.cookiejar
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from project_helpers import (
    CLASSES,
    TRAIN_ARGS,
    annotate_csv,
    cli,
    true_label,
    write_digits,
)

from kerasll.project.labelstudio_api import LabelStudio

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv-label-studio"
# KERASLL_LABEL_STUDIO may name another installation's executable.
EXECUTABLE = Path(os.environ.get("KERASLL_LABEL_STUDIO",
                                 VENV / "bin" / "label-studio"))
INSTALLED = (Path(os.environ["KERASLL_LABEL_STUDIO"]) if "KERASLL_LABEL_STUDIO"
             in os.environ else VENV / ".installed")  # make's stamp
TOKEN = "0123456789abcdef0123456789abcdef01234567"
USER, PASSWORD = "annotator@example.com", "kerasll-test-1"
# Healthy in 35-100 s on an idle machine; far longer on a loaded one.
START_S = 600


def _label_studio():
    """The `label-studio` executable, installed with `make label-studio` if
    missing; skips with the installer's last line when that fails."""
    if not INSTALLED.exists():
        try:
            subprocess.run(["make", "-s", "label-studio"], cwd=REPO, timeout=900,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as error:
            pytest.skip(f"label-studio could not be installed: {error}")
    if not (INSTALLED.exists() and EXECUTABLE.exists()):
        reason = f"label-studio could not be installed ({_install_error()})"
        print(reason)
        pytest.skip(reason)
    return EXECUTABLE


def _install_error():
    """The install log's last error line (or last line)."""
    if "KERASLL_LABEL_STUDIO" in os.environ:
        return f"KERASLL_LABEL_STUDIO={os.environ['KERASLL_LABEL_STUDIO']} is missing"
    log = Path(f"{VENV}.log")
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    errors = [line for line in lines if "ERROR" in line]
    return (errors or lines or [f"no install log at {log}"])[-1].strip()


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Server:
    """A Label Studio server of this test, spoken to with its legacy token."""

    def __init__(self, executable, data_dir, document_root, log_path):
        self.url = f"http://127.0.0.1:{_free_port()}"
        self.document_root = document_root
        self.log_path = log_path
        env = {
            **os.environ,
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
            "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
            "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(document_root),
            "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        }
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [str(executable), "start", "--no-browser", "--internal-host",
             "127.0.0.1", "--port", self.url.rsplit(":", 1)[1], "--data-dir",
             str(data_dir), "--username", USER, "--password", PASSWORD,
             "--user-token", TOKEN, "--enable-legacy-api-token"],
            env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # The user's side of the round trip: the REST API through the same
        # client `tasks --label-studio` uses.
        self.call = LabelStudio(self.url, TOKEN).call

    def wait_healthy(self):
        started = time.monotonic()
        while time.monotonic() - started < START_S:
            if self.process.poll() is not None:
                pytest.fail(f"label-studio exited ({self.process.returncode}): "
                            f"{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=5) as reply:
                    if json.load(reply).get("status") == "UP":
                        return time.monotonic() - started
            except (OSError, ValueError):
                pass
            time.sleep(1)
        pytest.fail(f"label-studio not healthy after {START_S} s: {self.log_tail()}")

    def log_tail(self):
        self._log.flush()
        return Path(self.log_path).read_text(errors="replace")[-1500:]

    def browser(self):
        """A URL opener logged in through the login form, as a browser is."""
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        with opener.open(f"{self.url}/user/login/", timeout=60) as reply:
            page = reply.read().decode()
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = urllib.parse.urlencode({"email": USER, "password": PASSWORD,
                                       "csrfmiddlewaretoken": csrf}).encode()
        request = urllib.request.Request(f"{self.url}/user/login/", data=form,
                                         headers={"Referer": f"{self.url}/user/login/"})
        with opener.open(request, timeout=60) as reply:
            assert "/user/login" not in reply.geturl(), "login refused"
        return opener

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


def _labeled_project(folder):
    """A project with a trained model and a round it picked (with predictions)."""
    truth = write_digits(folder / "captures", {"cam": range(60)})
    project = folder / "project"
    assert cli("init", project, "--classes", CLASSES).exit_code == 0
    assert cli("add", project, folder / "captures" / "cam").exit_code == 0
    assert cli("select", project, "--k", "20", "--random").exit_code == 0
    assert cli("tasks", project, "--format", "csv").exit_code == 0
    labels = annotate_csv(project / "tasks" / "round-1.csv", folder / "l.csv", truth)
    assert cli("labels", project, labels).exit_code == 0
    assert cli("train", project, *TRAIN_ARGS).exit_code == 0
    assert cli("select", project, "--k", "8").exit_code == 0
    return project, truth


def test_round_trip_through_label_studio(label_studio):
    # The session's server (conftest.py) serves its document root.
    work = label_studio.document_root / "digits"
    project, truth = _labeled_project(work)
    print(f"label-studio healthy after {label_studio.wait_healthy():.0f} s")
    created = label_studio.call("POST", "/api/projects/", {
        "title": "kerasll digits",
        "label_config": (project / "label_config.xml").read_text(),
    })
    # The README's step: the server's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT
    # is the tasks' --document-root.
    setup = ["--document-root", label_studio.document_root,
             "--label-studio", label_studio.url,
             "--token", TOKEN, "--ls-project", created["id"]]
    result = cli("tasks", project, *setup)
    assert result.exit_code == 0, result.output
    assert "1 image folder(s) connected" in result.output
    assert "8 task(s) imported, 0 already there" in result.output
    again = cli("tasks", project, *setup)
    assert "0 image folder(s) connected; 0 task(s) imported, 8 already" in again.output

    listed = label_studio.call("GET", f"/api/tasks/?project={created['id']}")
    task_ids = sorted(task["id"] for task in listed["tasks"])
    assert len(task_ids) == 8
    shown = label_studio.call("GET", f"/api/tasks/{task_ids[0]}/")
    assert shown["predictions"]  # The model's pre-annotation.
    url = urllib.parse.urljoin(label_studio.url, shown["data"]["image"])
    with label_studio.browser().open(url, timeout=60) as reply:
        assert reply.status == 200
        served = reply.read()
    connection = sqlite3.connect(project / "manifest.sqlite")
    (path,) = connection.execute("SELECT path FROM items WHERE id = ?",
                                 (shown["data"]["kerasll_item"],)).fetchone()
    connection.close()
    assert served == Path(path).read_bytes()

    for task_id in task_ids:
        task = label_studio.call("GET", f"/api/tasks/{task_id}/")
        label = true_label(truth, task["data"]["image"])
        label_studio.call("POST", f"/api/tasks/{task_id}/annotations/", {
            "result": [{"from_name": "label", "to_name": "image", "type": "choices",
                        "value": {"choices": [label]}}],
            "was_cancelled": False,
        })
    export = label_studio.call(
        "GET", f"/api/projects/{created['id']}/export?exportType=JSON")
    export_path = work / "export.json"
    export_path.write_text(json.dumps(export))

    first = cli("labels", project, export_path)
    assert first.exit_code == 0, first.output
    assert "8 new" in first.output
    again = cli("labels", project, export_path)
    assert "0 new, 0 changed, 8 unchanged" in again.output

    connection = sqlite3.connect(project / "manifest.sqlite")
    rows = connection.execute(
        "SELECT items.path, labels.label, labels.annotator FROM labels "
        "JOIN items ON items.id = labels.item_id "
        "JOIN picks ON picks.item_id = items.id AND picks.round_id = 2"
    ).fetchall()
    connection.close()
    assert len(rows) == 8
    assert all(label == true_label(truth, path) for path, label, _ in rows)
    assert {annotator for _, _, annotator in rows} == {"user:1"}

"""Setting up a Label Studio project over its REST API (Label Studio 1.23).

Label Studio serves a local image (`/data/local-files/?d=<path>`) only to a
user of a project that has a Local Storage connection whose folder holds the
image; without one every image answers HTTP 404. `publish_tasks` therefore
first connects the folders of the tasks' images (one connection per folder
not yet covered, never synced: a sync would import every image of the folder
as a task), then imports the tasks the project does not have yet (matched by
kerasll project, item and round), so running it again adds nothing.

The server must run with `LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true` and
`LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT` set to the tasks' `--document-root`
(the folders must lie strictly below it). Requests authenticate with a legacy
API token (`Authorization: Token ...`).
"""

import dataclasses
import json
import os
import urllib.error
import urllib.parse
import urllib.request

from kerasll.project.errors import ProjectError

STORAGE_TITLE = "kerasll images"
_PAGE_SIZE = 100
_TIMEOUT_S = 60


class LabelStudioError(ProjectError):
    """Label Studio cannot be reached or refuses a request."""


@dataclasses.dataclass(frozen=True)
class PublishResult:
    """What `publish_tasks` did.

    Attributes:
        connected: image folders given a new Local Storage connection.
        imported: tasks imported.
        present: tasks the project already had.
    """

    connected: tuple
    imported: int
    present: int

    def summary(self):
        """One line for the CLI."""
        folders = f" ({', '.join(self.connected)})" if self.connected else ""
        return (
            f"Label Studio: {len(self.connected)} image folder(s) connected"
            f"{folders}; {self.imported} task(s) imported, {self.present} already "
            "there"
        )


class LabelStudio:
    """A Label Studio server spoken to with a legacy API token.

    Args:
        url: the server's base URL, e.g. http://localhost:8080.
        token: the user's legacy API token.
    """

    def __init__(self, url, token):
        if urllib.parse.urlparse(url).scheme not in ("http", "https"):
            raise LabelStudioError(
                f"Expected an http(s) URL of Label Studio. Received: {url!r}"
            )
        self.url = url.rstrip("/")
        self.token = token

    def call(self, method, path, body=None):
        """Sends one request and returns the decoded JSON reply.

        Args:
            method: "GET" or "POST".
            path: the API path with its query, e.g. "/api/projects/3/".
            body: a JSON-ready request body, or None.

        Returns:
            The parsed JSON reply.

        Raises:
            LabelStudioError: the server cannot be reached or answers an error.
        """
        request = urllib.request.Request(
            self.url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Token {self.token}",
                     "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as reply:
                return json.load(reply)
        except urllib.error.HTTPError as error:
            detail = " ".join(error.read()[:300].decode(errors="replace").split())
            raise LabelStudioError(
                f"Expected Label Studio to accept {method} {path}. Received HTTP "
                f"{error.code}: {detail}"
            ) from None
        except (OSError, ValueError) as error:
            raise LabelStudioError(
                f"Expected Label Studio at {self.url}. Received {method} {path}: "
                f"{error}"
            ) from None


def image_folders(paths):
    """The fewest folders that hold every image: each image's folder, less
    those inside another of them.

    Args:
        paths: absolute image paths.

    Returns:
        Sorted absolute folder paths.
    """
    folders = sorted({os.path.dirname(os.path.abspath(path)) for path in paths})
    return [folder for folder in folders
            if not any(_inside(folder, other) for other in folders if other != folder)]


def _inside(folder, root):
    return os.path.commonpath([folder, root]) == root


def connect_images(client, project, paths):
    """Gives `project` a Local Storage connection for every image folder.

    Args:
        client: a `LabelStudio`.
        project: the Label Studio project id.
        paths: absolute image paths.

    Returns:
        The folders connected now (those already covered are skipped).

    Raises:
        LabelStudioError: a refused connection, e.g. a folder that is not
            below the server's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT.
    """
    existing = [storage.get("path") or "" for storage in client.call(
        "GET", f"/api/storages/localfiles/?project={project}")]
    connected = []
    for folder in image_folders(paths):
        if any(root and _inside(folder, os.path.normpath(root)) for root in existing):
            continue
        client.call("POST", "/api/storages/localfiles/", {
            "project": project, "path": folder, "title": STORAGE_TITLE,
            "use_blob_urls": True, "regex_filter": "",
        })
        connected.append(folder)
    return connected


def _task_key(data):
    return (data.get("kerasll_project"), data.get("kerasll_item"),
            data.get("kerasll_round"))


def import_tasks(client, project, tasks):
    """Imports the tasks that `project` does not hold yet.

    Args:
        client: a `LabelStudio`.
        project: the Label Studio project id.
        tasks: Label Studio tasks made by `kerasll.project.labelstudio.import_task`.

    Returns:
        (imported, already present).

    Raises:
        LabelStudioError: a refused request.
    """
    present, page = set(), 1
    while True:
        reply = client.call(
            "GET", f"/api/tasks/?project={project}&page={page}&page_size={_PAGE_SIZE}")
        present.update(_task_key(task.get("data") or {}) for task in reply["tasks"])
        if page * _PAGE_SIZE >= reply.get("total", 0) or not reply["tasks"]:
            break
        page += 1
    new = [task for task in tasks if _task_key(task["data"]) not in present]
    if new:
        client.call("POST", f"/api/projects/{project}/import", new)
    return len(new), len(tasks) - len(new)


def publish_tasks(url, token, project, tasks, paths):
    """Connects the images' folders to a Label Studio project, then imports
    the tasks it does not have.

    Args:
        url, token: see `LabelStudio`.
        project: the Label Studio project id.
        tasks: the tasks (see `import_tasks`).
        paths: their absolute image paths.

    Returns:
        A `PublishResult`.

    Raises:
        LabelStudioError: see `connect_images` and `import_tasks`.
    """
    client = LabelStudio(url, token)
    client.call("GET", f"/api/projects/{project}/")  # An unknown project: 404.
    connected = connect_images(client, project, paths)
    imported, present = import_tasks(client, project, tasks)
    return PublishResult(tuple(connected), imported, present)

"""The labeling loop: a project folder, labels from people, device picks.

A project is a folder with a SQLite manifest (`manifest.Manifest`) of items,
labels, models and rounds. One module per step: `sources` (add), `training`
(train and export), `selection` (score here or merge device picks), `tasks`
and `labelstudio` (files for annotators), `labels` (import), `status`
(counts and the ranking audit). `commands` is the `kerasll project` CLI.
"""

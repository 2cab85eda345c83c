"""The labeling loop: a project folder, labels from people, device picks.

A project is a folder with a SQLite manifest (`manifest.Manifest`) of items,
labels, models and rounds. One module per step: `sources` (add), `training`
(train and export), `selection` (score here or merge device picks),
`annotation_files` and `labelstudio` (files for annotators),
`labelstudio_api` (a Label Studio project's image storage and task import),
`labels` (import), `status` (counts and the ranking audit). What differs
between classification, detection and keypoints is one object per task
kind (`kinds`), which the steps ask instead of testing the task's name.
Detection and keypoint projects add `schema` (their settings at `init`),
`regions` (boxes and keypoints between Label Studio's percent and the
manifest's pixels) and `annotated` (their labeled items as a
`kerasll.tasks` task: training, model views, held-out metric). The
`kerasll project` commands live in `kerasll_cli.project`; nothing here
imports click.
"""

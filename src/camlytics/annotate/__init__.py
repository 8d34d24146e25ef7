"""The labelling web app: `create_app(dataset_dir, annotator=...)` and the `camlytics annotate` command."""

"""The dataset store: an SQLite index (WAL) plus content-addressed JPEG files, safe against kill -9."""

from camlytics.store.dataset import DEFAULT_CLASSES, Dataset, Record

__all__ = ["DEFAULT_CLASSES", "Dataset", "Record"]

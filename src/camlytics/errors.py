"""The exceptions users can catch. The CLI prints any of them as one line and exits non-zero."""


class CamlyticsError(Exception):
    """Base class: a problem the user can fix (bad input, unreachable camera, ...), not a bug."""


class SourceError(CamlyticsError):
    """A frame source cannot be opened or read (unreachable host, wrong password, not a JPEG...)."""


class AuthError(SourceError):
    """The camera refused the credentials (HTTP 401/403)."""


class DatasetError(CamlyticsError):
    """A dataset directory is missing, corrupt, from a newer version, or cannot be written."""


class ModelError(CamlyticsError):
    """A model directory or edge model file is missing, truncated or invalid."""


class TrainingError(CamlyticsError):
    """Training cannot run on the given data (no labels, one class, too few images...)."""


class DeployError(CamlyticsError):
    """Packaging or deployment to a camera failed."""

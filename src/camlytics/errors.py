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


class FleetError(CamlyticsError):
    """A fleet file is missing or invalid, names an unknown sensor, or a credential variable is not set."""


# The edge package's exceptions (MicroPython-safe ValueErrors, named here so that this module imports
# nothing) and the host error each becomes when host code calls the edge's reader, decoder or config check.
EDGE_ERRORS: dict[str, type[CamlyticsError]] = {
    "camlytics.edge.model.ModelFileError": ModelError,
    "camlytics.edge.jpeg.JpegError": SourceError,
    "camlytics.edge.preprocess.PreprocessError": SourceError,
    "camlytics.edge.config.ConfigError": CamlyticsError,
}


def host_error_type(exc: BaseException, default: type[CamlyticsError] = CamlyticsError) -> type[CamlyticsError]:
    """The host error class EDGE_ERRORS gives an exception of the edge package (`default` for any other)."""
    return EDGE_ERRORS.get(f"{type(exc).__module__}.{type(exc).__name__}", default)

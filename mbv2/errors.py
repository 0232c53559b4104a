"""Exceptions raised by the library, each with a message a student can act on."""


class MBV2Error(Exception):
    """Base class: the UI and the CLI show the message of any of these as it is."""


class SpecError(MBV2Error, ValueError):
    """An architecture that cannot be built; `problems` holds one message per problem."""

    def __init__(self, problems: list[str]):
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


class WeightsError(MBV2Error):
    """Weights that cannot be found, read, or fitted to the architecture."""


class WeightsUnavailableError(WeightsError):
    """Weights that would need a download this machine cannot make."""


class WeightsMismatchError(WeightsError):
    """A state_dict whose tensors do not fit the model; the message names them."""


class ResourceError(MBV2Error, ValueError):
    """A request whose estimated memory or work is above this server's limits; the message names both."""


class SettingsError(MBV2Error, ValueError):
    """A setting outside its range (latency runs, sweep workers, grid size); the message names it and the range."""


class ImageError(MBV2Error, ValueError):
    """An upload that is not an image this app can classify."""


class ExportError(MBV2Error):
    """A model that could not be written as TorchScript or ONNX; the message says what to install or change."""


class InheritanceError(MBV2Error, ValueError):
    """Pretrained weights that cannot be mapped onto an architecture as asked."""


class EvaluationError(MBV2Error, ValueError):
    """A folder of images that cannot be evaluated on; the message says what to point at instead."""


class SweepFileError(MBV2Error, ValueError):
    """A sweep table that cannot be read, resumed or appended to; the message names the file and the line."""


class ComparisonFileError(MBV2Error, ValueError):
    """A saved comparison (JSON) that cannot be read back; the message says what is wrong where."""

"""KilnError and one subclass per kiln_status (include/kiln.h)."""

__all__ = [
    "KilnError", "InvalidArgumentError", "InvalidModelError", "UnsupportedError",
    "IncompatibleEngineError", "CorruptEngineError", "KilnMemoryError", "KilnIOError",
    "DeviceError", "KilnTimeoutError", "KilnRuntimeError", "InternalError",
]


class KilnError(Exception):
    """A failing Kiln call. ``status`` is the C ``kiln_status`` value,
    ``status_name`` its name and ``message`` the library's message (the same
    text ``kiln_last_error()`` returns in C)."""

    status = None
    status_name = "KILN_ERROR"

    def __init__(self, status, message=""):
        if not isinstance(status, int):  # raised from Python with only a message
            status, message = type(self).status or 0, status
        super().__init__(message)
        self.status = status
        self.message = message

    def __str__(self):
        return "%s: %s" % (self.status_name, self.message)


def _sub(name, status, status_name, doc, *bases):
    cls = type(name, (KilnError,) + bases,
               {"status": status, "status_name": status_name, "__doc__": doc,
                "__module__": "kiln"})
    globals()[name] = cls
    return cls


# Values equal enum kiln_status in kiln.h.
_sub("InvalidArgumentError", 1, "KILN_INVALID_ARGUMENT",
     "A caller passed something unusable: an unknown input name, a wrong dtype "
     "or rank, a shape outside the selected profile.", ValueError)
_sub("InvalidModelError", 2, "KILN_INVALID_MODEL", "The model file is malformed or inconsistent.")
_sub("UnsupportedError", 3, "KILN_UNSUPPORTED", "Valid, but Kiln does not implement it.")
_sub("IncompatibleEngineError", 4, "KILN_INCOMPATIBLE_ENGINE",
     "The engine was built by another Kiln version or for another CPU; rebuild it.")
_sub("CorruptEngineError", 5, "KILN_CORRUPT_ENGINE", "The engine file is damaged.")
_sub("KilnMemoryError", 6, "KILN_OUT_OF_MEMORY", "Kiln ran out of memory.", MemoryError)
_sub("KilnIOError", 7, "KILN_IO_ERROR", "A file could not be read or written.")
_sub("DeviceError", 8, "KILN_DEVICE_ERROR", "The device failed.")
_sub("KilnTimeoutError", 9, "KILN_TIMEOUT", "An operation timed out.")
_sub("KilnRuntimeError", 10, "KILN_RUNTIME_ERROR",
     "Execution failed (for example on bad input values).")
_sub("InternalError", 11, "KILN_INTERNAL", "A bug in Kiln; please report it.")

BY_STATUS = {cls.status: cls for cls in (
    InvalidArgumentError, InvalidModelError, UnsupportedError,  # noqa: F821
    IncompatibleEngineError, CorruptEngineError, KilnMemoryError,  # noqa: F821
    KilnIOError, DeviceError, KilnTimeoutError, KilnRuntimeError, InternalError)}  # noqa: F821

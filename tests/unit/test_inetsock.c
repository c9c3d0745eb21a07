/* Unit tests for base/inetsock: numeric addresses and listeners. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include "base/inetsock.h"
#include "check.h"

static void test_addr(void)
{
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    CHECK_EQ_INT(inetsock_addr("192.0.2.1", 25, &ss, &sl), 0);
    CHECK_EQ_INT(ss.ss_family, AF_INET);
    CHECK_EQ_INT(sl, sizeof(struct sockaddr_in));
    CHECK_EQ_INT(ntohs(((struct sockaddr_in *)&ss)->sin_port), 25);
    CHECK_EQ_INT(inetsock_addr("2001:db8::1", 587, &ss, &sl), 0);
    CHECK_EQ_INT(ss.ss_family, AF_INET6);
    CHECK_EQ_INT(sl, sizeof(struct sockaddr_in6));
    CHECK_EQ_INT(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 587);
    /* Names are not resolved here; nothing but a numeric address. */
    CHECK_EQ_INT(inetsock_addr("localhost", 25, &ss, &sl), -EINVAL);
    CHECK_EQ_INT(inetsock_addr("192.0.2.256", 25, &ss, &sl), -EINVAL);
    CHECK_EQ_INT(inetsock_addr("[::1]", 25, &ss, &sl), -EINVAL);
    CHECK_EQ_INT(inetsock_addr("", 25, &ss, &sl), -EINVAL);
    CHECK_EQ_INT(inetsock_addr("127.0.0.1", 65536, &ss, &sl), -EINVAL);
    CHECK_EQ_INT(inetsock_addr("127.0.0.1", -1, &ss, &sl), -EINVAL);
}

static void test_listen(void)
{
    const char *addrs[] = {"127.0.0.1", "::1"};
    for (size_t i = 0; i < 2; i++) {
        int fd = inetsock_listen(addrs[i], 0, 16);
        CHECK(fd >= 0);
        if (fd < 0)
            continue;
        CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
        CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        CHECK_EQ_INT(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
        CHECK_EQ_INT(ss.ss_family, i == 0 ? AF_INET : AF_INET6);
        /* A second listener on the same port is refused with the errno. */
        int port = ntohs(i == 0 ? ((struct sockaddr_in *)&ss)->sin_port
                                : ((struct sockaddr_in6 *)&ss)->sin6_port);
        CHECK_EQ_INT(inetsock_listen(addrs[i], port, 16), -EADDRINUSE);
        close(fd);
    }
    CHECK_EQ_INT(inetsock_listen("not-an-address", 0, 16), -EINVAL);
}

int main(void)
{
    test_addr();
    test_listen();
    return check_result("test_inetsock");
}

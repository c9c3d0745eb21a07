/* pipe.c: see pipe.h. posix_spawn (no fork of this multi-threaded
 * process), then one poll loop feeds stdin, drains the output and looks
 * for the exit until the deadline. */
#include "deliver/pipe.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fsio.h"
#include "base/xmalloc.h"
#include "deliver/local_write.h"
#include "deliver/maildir.h"

/* How often the loop looks whether the command ended while it waits. */
#define PIPE_POLL_MS 50

static int64_t pipe_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void pipe_status_result(const char *prog, int status, const char *out, size_t n,
                        struct result *res)
{
    static const struct {
        int code;
        const char *name, *enh;
        int reply;
    } sysexits[] = {
        {EX_USAGE, "EX_USAGE", "5.3.0", 554},         {EX_DATAERR, "EX_DATAERR", "5.6.0", 554},
        {EX_NOINPUT, "EX_NOINPUT", "5.3.0", 554},     {EX_NOUSER, "EX_NOUSER", "5.1.1", 550},
        {EX_NOHOST, "EX_NOHOST", "5.1.2", 550},       {EX_UNAVAILABLE, "EX_UNAVAILABLE", "5.3.0", 554},
        {EX_SOFTWARE, "EX_SOFTWARE", "5.3.0", 554},   {EX_OSERR, "EX_OSERR", "5.3.0", 554},
        {EX_OSFILE, "EX_OSFILE", "5.3.0", 554},       {EX_CANTCREAT, "EX_CANTCREAT", "5.2.0", 550},
        {EX_IOERR, "EX_IOERR", "5.3.0", 554},         {EX_TEMPFAIL, "EX_TEMPFAIL", "4.3.0", 451},
        {EX_PROTOCOL, "EX_PROTOCOL", "5.5.0", 554},   {EX_NOPERM, "EX_NOPERM", "5.7.0", 550},
        {EX_CONFIG, "EX_CONFIG", "5.3.5", 554},
    };
    /* The output as the end of the result's text (result_set turns line
     * breaks into spaces and other controls into '?'; a NUL would cut it). */
    char said[PIPE_OUTPUT_KEPT + 3] = "";
    size_t k = n < PIPE_OUTPUT_KEPT ? n : PIPE_OUTPUT_KEPT;
    while (k && (out[k - 1] == '\n' || out[k - 1] == '\r' || out[k - 1] == ' '))
        k--;
    if (k) {
        memcpy(said, ": ", 2);
        for (size_t i = 0; i < k; i++)
            said[2 + i] = out[i] ? out[i] : '?';
        said[2 + k] = '\0';
    }
    if (WIFSIGNALED(status)) {
        result_set(res, RESULT_TEMPFAIL, 451, "4.3.0", "command %s killed by signal %d%s", prog,
                   WTERMSIG(status), said);
        return;
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : EX_SOFTWARE;
    if (code == 0) {
        result_set(res, RESULT_OK, 250, "2.0.0", "delivered to command %s%s", prog, said);
        return;
    }
    for (size_t i = 0; i < sizeof sysexits / sizeof sysexits[0]; i++) {
        if (sysexits[i].code != code)
            continue;
        result_set(res, code == EX_TEMPFAIL ? RESULT_TEMPFAIL : RESULT_PERMFAIL,
                   sysexits[i].reply, sysexits[i].enh, "command %s exited with %d (%s)%s", prog,
                   code, sysexits[i].name, said);
        return;
    }
    result_set(res, RESULT_PERMFAIL, 554, "5.3.0", "command %s exited with %d%s", prog, code,
               said);
}

/* The environment of the command: its variables and nothing else. */
static char **pipe_env(const struct pipe_req *req)
{
    char **env = xcalloc(PIPE_VAR_N + 3, sizeof *env);
    size_t n = 0;
    struct buf b = BUF_INIT;
    for (int v = 0; v < PIPE_VAR_N; v++) {
        buf_printf(&b, "%s=%s", pipe_cmd_env_name((enum pipe_var)v),
                   req->vals[v] ? req->vals[v] : "");
        env[n++] = buf_steal(&b);
    }
    buf_printf(&b, "HOME=%s", req->home ? req->home : "/");
    env[n++] = buf_steal(&b);
    env[n++] = xstrdup("PATH=/usr/bin:/bin");
    env[n] = NULL;
    return env;
}

static void pipe_env_free(char **env)
{
    for (char **e = env; *e; e++)
        free(*e);
    free(env);
}

/* Starts argv with stdin from in_fd and stdout/stderr to out_fd. */
static int pipe_spawn(char **argv, char **env, int in_fd, int out_fd, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc != 0)
        return -rc;
    rc = posix_spawnattr_init(&at);
    if (rc != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return -rc;
    }
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 2);
    /* Nothing of the delivery process's (the queue's channels, other
     * messages) reaches the command, CLOEXEC or not. */
    if (rc == 0)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    if (rc == 0)
        rc = posix_spawn_file_actions_addchdir_np(&fa, "/");
    /* Its own group, to kill whatever it starts; ignored signals (SIGPIPE
     * here) and the mask are not inherited. */
    if (rc == 0)
        rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                               POSIX_SPAWN_SETSIGDEF);
    if (rc == 0)
        rc = posix_spawnattr_setpgroup(&at, 0);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(&at, &none);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(&at, &all);
    if (rc == 0)
        rc = posix_spawn(pid, argv[0], &fa, &at, argv, env);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return -rc;
}

/* What goes to the command's stdin, produced a chunk at a time. */
struct pipe_feed {
    const struct pipe_req *req;
    struct buf pending; /* converted, not yet written */
    size_t done;        /* of pending */
    uint64_t left;      /* body octets not yet read */
    off_t off;
    int cr;
    int started;
    char *in; /* owned: MAILDIR_READ_CHUNK */
};

/* Fills f->pending when it is empty. Returns 0, 1 at the end, or -errno. */
static int pipe_feed_more(struct pipe_feed *f)
{
    if (f->done < f->pending.len)
        return 0;
    buf_reset(&f->pending);
    f->done = 0;
    if (!f->started) {
        f->started = 1;
        local_write_head(&f->pending, f->req->return_path, f->req->delivered_to);
        return 0;
    }
    if (f->left == 0) {
        if (f->cr) { /* a CR at the very end is kept */
            f->cr = 0;
            buf_putc(&f->pending, '\r');
            return 0;
        }
        return 1;
    }
    size_t n = f->left < MAILDIR_READ_CHUNK ? (size_t)f->left : MAILDIR_READ_CHUNK;
    int rc = fsio_pread_all(f->req->body_fd, f->in, n, f->off);
    if (rc < 0)
        return rc;
    char *dst = buf_reserve(&f->pending, n + 1);
    buf_commit(&f->pending, local_write_lf(f->in, n, dst, &f->cr));
    f->off += (off_t)n;
    f->left -= n;
    return 0;
}

int pipe_deliver(const struct pipe_req *req, struct result *res)
{
    char **argv = NULL;
    const char *prog = "";
    if (pipe_cmd_expand(req->cmd, req->vals, &argv) < 0) {
        result_set(res, RESULT_TEMPFAIL, 451, "4.3.5", "malformed command in the aliases file");
        return -EINVAL;
    }
    prog = argv[0];
    char **env = pipe_env(req);
    int in[2] = {-1, -1}, out[2] = {-1, -1};
    pid_t pid = -1;
    int rc = 0;
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
        rc = -errno;
    if (rc == 0)
        rc = pipe_spawn(argv, env, in[0], out[1], &pid);
    if (in[0] >= 0)
        close(in[0]);
    if (out[1] >= 0)
        close(out[1]);
    in[0] = out[1] = -1;
    if (rc < 0) {
        char ebuf[128];
        result_set(res, RESULT_TEMPFAIL, 451, "4.3.0", "cannot run command %s: %s", prog,
                   strerror_r(-rc, ebuf, sizeof ebuf));
        goto out;
    }
    fcntl(in[1], F_SETFL, O_NONBLOCK);
    fcntl(out[0], F_SETFL, O_NONBLOCK);

    struct pipe_feed f = {req, BUF_INIT, 0, req->body_len, req->body_off, 0, 0,
                          xmalloc(MAILDIR_READ_CHUNK)};
    char kept[PIPE_OUTPUT_KEPT];
    size_t nkept = 0;
    int status = 0, exited = 0;
    int64_t deadline = pipe_now_ms() + (int64_t)req->time_limit * 1000;
    for (;;) {
        /* Seen, not reaped: while it is a zombie its pid (the group's id)
         * cannot go to another process, so the kill below is safe. */
        siginfo_t si;
        si.si_pid = 0;
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid) {
            exited = 1;
            break;
        }
        int64_t left = deadline - pipe_now_ms();
        if (left <= 0)
            break;
        struct pollfd p[2];
        nfds_t np = 0;
        if (in[1] >= 0) {
            int more = pipe_feed_more(&f);
            if (more != 0) {
                if (more < 0) {
                    /* Our copy could not be read: the command gets a
                     * short message; it must not count as delivered. */
                    rc = more;
                }
                close(in[1]); /* end of the message: EOF on its stdin */
                in[1] = -1;
            } else {
                p[np++] = (struct pollfd){in[1], POLLOUT, 0};
            }
        }
        if (out[0] >= 0)
            p[np++] = (struct pollfd){out[0], POLLIN, 0};
        int ms = left < PIPE_POLL_MS ? (int)left : PIPE_POLL_MS;
        if (poll(p, np, ms) < 0 && errno != EINTR)
            break;
        for (nfds_t i = 0; i < np; i++) {
            if (p[i].revents == 0)
                continue;
            if (p[i].fd == in[1]) {
                ssize_t n = write(in[1], f.pending.data + f.done, f.pending.len - f.done);
                if (n > 0) {
                    f.done += (size_t)n;
                } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                    /* EPIPE: it stopped reading; its exit status says
                     * whether that was all right. */
                    close(in[1]);
                    in[1] = -1;
                }
            } else {
                char b[4096];
                ssize_t n = read(out[0], b, sizeof b);
                if (n > 0) {
                    size_t k = (size_t)n < sizeof kept - nkept ? (size_t)n : sizeof kept - nkept;
                    memcpy(kept + nkept, b, k);
                    nkept += k; /* the rest is read and dropped: it must not block */
                } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                    close(out[0]);
                    out[0] = -1;
                }
            }
        }
    }
    /* Past the time limit the whole group goes; after an exit, whatever
     * it left running in its group (not waited for) goes too. */
    kill(-pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!exited) {
        result_set(res, RESULT_TEMPFAIL, 451, "4.3.0",
                   "command %s did not finish within %u s: killed", prog, req->time_limit);
    } else {
        /* What it wrote just before it ended is still in the pipe. */
        while (out[0] >= 0 && nkept < sizeof kept) {
            ssize_t n = read(out[0], kept + nkept, sizeof kept - nkept);
            if (n <= 0)
                break;
            nkept += (size_t)n;
        }
        pipe_status_result(prog, status, kept, nkept, res);
        if (rc < 0 && res->kind == RESULT_OK) {
            char ebuf[128];
            result_set(res, RESULT_TEMPFAIL, 451, "4.3.0", "reading the message: %s",
                       strerror_r(-rc, ebuf, sizeof ebuf));
        }
    }
    buf_free(&f.pending);
    free(f.in);
out:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (out[i] >= 0)
            close(out[i]);
    }
    pipe_env_free(env);
    pipe_cmd_free(argv);
    return rc;
}

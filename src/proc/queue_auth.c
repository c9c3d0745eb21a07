/* queue_auth.c: a small thread pool for password checks. The users table
 * a check reads is a snapshot with a reference count kept on the loop
 * thread, so re-reading the file never pulls a table from under a worker. */
#include "proc/queue_auth.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sasl/authcache.h"
#include "sasl/sasl.h"
#include "sasl/verify.h"
#include "base/log.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "conf/table.h"
#include "queue/pool.h"

#define QAUTH_THREADS 2
#define QAUTH_PENDING_MAX 256 /* checks queued at once; more are TEMPFAIL */

struct qauth_users {
    int refs; /* loop thread only */
    struct conf_table *table; /* owned, may be NULL: nobody can log in */
};

struct qauth_job {
    struct pool_job job; /* first: the pool hands this pointer back */
    struct queue_auth *qa;
    uint64_t req;
    struct qauth_users *users;
    char user[SASL_FIELD_MAX + 1];
    char password[SASL_FIELD_MAX + 1];
    int result;
};

struct queue_auth {
    struct ev_loop *loop;
    const struct config *cfg;
    struct pool *pool;
    struct authcache *cache;
    struct qauth_users *users; /* current snapshot */
    struct stat users_st;      /* of the file the snapshot was read from */
    int have_st;
    unsigned pending;
    queue_auth_done_fn done;
    void *arg;
};

static void qauth_users_unref(struct qauth_users *u)
{
    if (u && --u->refs == 0) {
        conf_table_free(u->table);
        free(u);
    }
}

/* Reads the users file again when it changed (inode, size or mtime), so
 * `tern user add` and `passwd` take effect without a reload. */
static void qauth_refresh(struct queue_auth *qa)
{
    const char *path = qa->cfg->users_file;
    struct stat st;
    if (path == NULL || stat(path, &st) < 0)
        return;
    if (qa->have_st && st.st_ino == qa->users_st.st_ino && st.st_size == qa->users_st.st_size &&
        st.st_mtim.tv_sec == qa->users_st.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == qa->users_st.st_mtim.tv_nsec)
        return;
    struct buf err = BUF_INIT;
    struct conf_table *t = config_users_read(qa->cfg, &err);
    if (t == NULL && err.len) {
        log_err("users file not reloaded: %s", err.data);
        buf_free(&err);
        return; /* keep the last good table */
    }
    buf_free(&err);
    struct qauth_users *u = xcalloc(1, sizeof *u);
    u->refs = 1;
    u->table = t;
    qauth_users_unref(qa->users);
    qa->users = u;
    qa->users_st = st;
    qa->have_st = 1;
    log_debug("users file %s loaded", path);
}

static void qauth_run(struct pool_job *job)
{
    struct qauth_job *j = (struct qauth_job *)job;
    j->result = (int)auth_verify(j->users->table, j->user, j->password, j->qa->cache);
    sasl_wipe(j->password, sizeof j->password);
}

static void qauth_on_pool(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
    struct queue_auth *qa = arg;
    struct pool_job *pj;
    while ((pj = pool_reap(qa->pool)) != NULL) {
        struct qauth_job *j = (struct qauth_job *)pj;
        qa->pending--;
        qauth_users_unref(j->users);
        qa->done(qa->arg, j->req, j->result);
        free(j);
    }
}

struct queue_auth *queue_auth_new(struct ev_loop *loop, const struct config *cfg,
                                  queue_auth_done_fn done, void *arg)
{
    struct queue_auth *qa = xcalloc(1, sizeof *qa);
    qa->loop = loop;
    qa->cfg = cfg;
    qa->done = done;
    qa->arg = arg;
    qa->pool = pool_new(QAUTH_THREADS);
    qa->cache = authcache_new(AUTHCACHE_MAX_DEFAULT, cfg->auth_cache_ttl);
    if (qa->pool == NULL || qa->cache == NULL ||
        ev_io_add(loop, pool_fd(qa->pool), EV_READ, qauth_on_pool, qa) < 0) {
        log_err("cannot start the AUTH threads");
        queue_auth_free(qa);
        return NULL;
    }
    qa->users = xcalloc(1, sizeof *qa->users);
    qa->users->refs = 1;
    qauth_refresh(qa);
    return qa;
}

void queue_auth_free(struct queue_auth *qa)
{
    if (qa == NULL)
        return;
    if (qa->pool) {
        ev_io_del(qa->loop, pool_fd(qa->pool));
        struct pool_job *left = pool_stop(qa->pool);
        while (left) {
            struct pool_job *next = left->next;
            qauth_users_unref(((struct qauth_job *)left)->users);
            sasl_wipe(((struct qauth_job *)left)->password, SASL_FIELD_MAX + 1);
            free(left);
            left = next;
        }
        struct pool_job *pj;
        while ((pj = pool_reap(qa->pool)) != NULL) {
            qauth_users_unref(((struct qauth_job *)pj)->users);
            free(pj);
        }
        pool_free(qa->pool);
    }
    authcache_free(qa->cache);
    qauth_users_unref(qa->users);
    free(qa);
}

void queue_auth_check(struct queue_auth *qa, uint64_t req, const char *user,
                      const char *password, size_t pwlen)
{
    if (qa->pending >= QAUTH_PENDING_MAX || pwlen > SASL_FIELD_MAX) {
        qa->done(qa->arg, req, pwlen > SASL_FIELD_MAX ? AUTH_FAIL : AUTH_TEMPFAIL);
        return;
    }
    qauth_refresh(qa);
    struct qauth_job *j = xcalloc(1, sizeof *j);
    j->job.run = qauth_run;
    j->qa = qa;
    j->req = req;
    j->users = qa->users;
    j->users->refs++;
    strutil_lcpy(j->user, user, sizeof j->user);
    memcpy(j->password, password, pwlen);
    j->password[pwlen] = '\0';
    qa->pending++;
    pool_submit(qa->pool, &j->job);
}

void queue_auth_set_config(struct queue_auth *qa, const struct config *cfg)
{
    qa->cfg = cfg;
    qa->have_st = 0;
    qauth_refresh(qa);
}

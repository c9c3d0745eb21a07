/* ipc_types: the one list of messages between tern's processes, with the
 * protocol version. Both sides check every field: a compromised peer is
 * hostile input too. Bump IPC_VERSION on any change of layout. */
#ifndef TERN_IPC_IPC_TYPES_H
#define TERN_IPC_IPC_TYPES_H

#define IPC_VERSION 8
#define IPC_MAX_PAYLOAD (1024 * 1024)

enum ipc_type {
    /* net -> queue: a session needs a body file. u64 req */
    IPC_BODY_OPEN = 1,
    /* queue -> net: str qid, fd attached. u64 req */
    IPC_BODY_OPENED = 2,
    /* queue -> net: u64 req, i32 -errno */
    IPC_BODY_FAILED = 3,
    /* net -> queue: u64 req, str qid, bytes envelope (envelope_serialize),
     * bytes prefix (header fields to put above the content: "" or complete
     * CRLF lines, at most QUEUE_PREFIX_MAX; hdrfield_block_ok) */
    IPC_COMMIT = 4,
    /* queue -> net: u64 req, str qid, u32 kind, i32 code, str enh, str text:
     * the reply the client hears (struct result; OK once durable) */
    IPC_COMMITTED = 5,
    /* net -> queue: str qid; the message will not be committed */
    IPC_ABORT = 6,
    /* net -> queue: u64 req, str user, bytes password (wiped after use) */
    IPC_AUTH_CHECK = 7,
    /* queue -> net: u64 req, i32 result (enum auth_result) */
    IPC_AUTH_RESULT = 8,
    /* parent -> net: bytes material (proc/tls_material), on SIGHUP */
    IPC_TLS_RELOAD = 9,
    /* queue -> net: u64 id, str domain, u64 content length, bytes envelope
     * (the domain's recipients); fd: the content (sealed memfd) */
    IPC_RELAY = 10,
    /* net -> queue: u64 id, str relay ("host[addr]:port" or "none"),
     * u32 peer_dsn (the server took over DSN duties), u32 n,
     * n x (u32 kind, i32 code, str enh, str text) */
    IPC_RELAY_DONE = 11,
    /* parent -> queue: read the configuration again (SIGHUP). No payload */
    IPC_RELOAD = 12,
    /* parent -> queue: a new smtp process (a reload); fd: its channel. No payload */
    IPC_NET_CHANNEL = 13,
    /* queue -> deliver: str maildir, str return path, str delivered-to,
     * u64 offset, u64 length, u32 check, str qid, u64 since, u32 pid;
     * fd: the content (read-only) */
    IPC_DELIVER = 14,
    /* deliver -> queue: u32 kind, i32 code, str enh, str text */
    IPC_DELIVERED = 15,
    /* net -> parent (control channel): about to accept; a reload lets the
     * old smtp process stop accepting only then. No payload */
    IPC_NET_READY = 16,
    /* queue -> net: u64 largest message the spool can take now (bytes;
     * 0: none), sent when it changes (queue_spool_room) */
    IPC_SPOOL_ROOM = 17,
    /* net -> queue: bytes row (one DMARC aggregate-report row, the line of
     * mailauth/dmarc_report.h without its LF, at most
     * DMARC_REPORT_LINE_MAX); fire and forget, no answer. The queue reads
     * it with dmarc_report_row_parse, sets the time itself and appends it
     * to the day's rows file (proc/queue_dmarc) */
    IPC_DMARC_ROW = 18,
    IPC_TYPE_MAX = 19
};

#endif

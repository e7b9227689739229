/*
 * bs_proto.h - the wire protocol between the searcher (ZeroMQ ROUTER) and agents (DEALER).
 *
 * proto/PROTOCOL.md is the one definition of every message; this codec is driven by a table
 * built from the same list (BS_MSG_MAP) and a per-type field schema, so a message that
 * bs_msg_decode() accepts has every required field present with the documented JSON type, and
 * consumers may read fields with cJSON_GetObjectItemCaseSensitive without re-checking types.
 *
 * On the wire a message is one JSON frame, optionally followed by one binary frame (CHUNK
 * carries file bytes that way; never base64). The ROUTER side sees the peer's routing id as an
 * extra first frame. Every JSON frame has "type" (a name from BS_MSG_MAP) and "v" (the protocol
 * version, BS_PROTO_VERSION).
 *
 * Decoding never asserts and never aborts on outside bytes: malformed JSON, a missing field, a
 * wrong type, an unknown type, an unknown version, an oversized frame or an unexpected extra
 * frame each return a BS_E* code with a message naming the field, for the caller to answer with
 * an ERROR message and a log line.
 */
#ifndef BS_PROTO_H
#define BS_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "bs_error.h"

#define BS_PROTO_VERSION 1
#define BS_PROTO_MAX_JSON (256u * 1024u)          /* larger JSON frames: BS_ETOOBIG */
#define BS_PROTO_CHUNK_SIZE (512u * 1024u)        /* bytes per CHUNK payload */
#define BS_PROTO_MAX_MSG (BS_PROTO_CHUNK_SIZE + BS_PROTO_MAX_JSON) /* ZMQ_MAXMSGSIZE */
#define BS_PROTO_MAX_ID 255                       /* routing id bytes */

#define BS_MSG_MAP(X)                                                                            \
    X(HELLO)     /* agent -> searcher: who I am, what I can do */                                \
    X(WELCOME)   /* searcher -> agent: accepted; heartbeat settings */                           \
    X(HEARTBEAT) /* both ways, every heartbeat_ms */                                             \
    X(JOB)       /* searcher -> agent: evaluate one configuration (or sensitivity), leased */    \
    X(RESULT)    /* agent -> searcher: metrics, sensitivity rows or a typed error for a JOB */   \
    X(FETCH)     /* agent -> searcher: send me bytes of file <sha256> */                         \
    X(CHUNK)     /* searcher -> agent: JSON header + one binary frame of file bytes */           \
    X(ERROR)     /* both ways: your last message was refused, and why */                         \
    X(BYE)       /* both ways: I am leaving */

typedef enum bs_msg_type {
#define BS__MSG_ENUM(name) BS_MSG_##name,
    BS_MSG_MAP(BS__MSG_ENUM)
#undef BS__MSG_ENUM
        BS_MSG__COUNT
} bs_msg_type_t;

const char *bs_msg_type_name(bs_msg_type_t t); /* "HELLO"; "?" if out of range */
int bs_msg_type_from_name(const char *name, bs_msg_type_t *out); /* 0 or BS_EPROTO */

/* A new message object {"type": NAME, "v": BS_PROTO_VERSION}; caller owns (cJSON_Delete).
 * NULL on OOM. */
cJSON *bs_msg_new(bs_msg_type_t t);
/* ERROR message: {"code": bs_err_name(code), "message": text, "ref": ref_type or absent}. */
cJSON *bs_msg_error(int code, const char *message, const char *ref_type);

/* Parses and validates one JSON frame. On success *out is the caller's (cJSON_Delete) and
 * *type is set. Errors: BS_ETOOBIG (len > BS_PROTO_MAX_JSON), BS_EPROTO (not JSON, not an
 * object, unknown type, missing or mistyped field: the message names it), BS_EVERSION.
 * On BS_EVERSION and on field errors *type is still set when the type was readable (else -1),
 * so the caller can name it in the ERROR reply. */
int bs_msg_decode(const void *buf, size_t len, cJSON **out, int *type, bs_err_t *err);
/* Validates an already-built message against the schema (used by tests and before sends). */
int bs_msg_validate(const cJSON *msg, int *type, bs_err_t *err);
/* Compact JSON text; caller frees with bs_free. NULL on OOM. */
char *bs_msg_encode(const cJSON *msg, size_t *len);

/* One received message with its frames. */
typedef struct bs_wire_msg {
    unsigned char id[BS_PROTO_MAX_ID + 1]; /* ROUTER side: peer routing id */
    size_t id_len;
    cJSON *msg;          /* owned; NULL if decoding failed */
    int type;            /* bs_msg_type_t, or -1 */
    void *payload;       /* owned (bs_malloc) binary frame, or NULL */
    size_t payload_len;
} bs_wire_msg_t;

/* Sends msg (and an optional binary payload frame) on a ZeroMQ socket without blocking.
 * id/id_len: the peer's routing id on a ROUTER socket; NULL/0 on a DEALER. Returns 0,
 * BS_EAGAIN if the socket would block (message dropped), BS_EZMQ otherwise (e.g. the ROUTER
 * peer is gone with ZMQ_ROUTER_MANDATORY set), BS_ENOMEM. */
int bs_wire_send(void *sock, const void *id, size_t id_len, const cJSON *msg,
                 const void *payload, size_t payload_len);
/* Receives one whole multipart message without blocking. with_id: 1 on a ROUTER socket.
 * Returns 0 with out->msg decoded; BS_EAGAIN if nothing is waiting; a decoding error code with
 * err filled and out->id/out->type set where known (all parts are consumed either way, so the
 * socket stays in step); BS_EZMQ on a socket error. Free with bs_wire_msg_free. */
int bs_wire_recv(void *sock, int with_id, bs_wire_msg_t *out, bs_err_t *err);
void bs_wire_msg_free(bs_wire_msg_t *m);

#endif

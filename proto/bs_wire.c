/*
 * bs_wire.c - ZeroMQ framing of protocol messages: [routing id] JSON [binary payload].
 *
 * Sending: the message is validated against its schema first (a malformed message is a bug
 * in the sender; it is logged and refused with BS_EPROTO, never put on the wire), a payload
 * frame is refused on anything but CHUNK (BS_EINVAL), and CHUNK always gets its binary frame,
 * empty if there are no bytes. Frames go out with ZMQ_DONTWAIT: a full queue drops the whole
 * message with BS_EAGAIN (ZeroMQ accepts the remaining parts of a multipart message once the
 * first is queued), and a ROUTER peer that is gone (EHOSTUNREACH under ZMQ_ROUTER_MANDATORY)
 * or any other failure is BS_EZMQ.
 *
 * Receiving: the first part is read with ZMQ_DONTWAIT (nothing waiting: BS_EAGAIN); the rest
 * of the multipart message is then read to its end whatever it contains, so a malformed
 * message never leaves parts behind that would be taken for the next message. Frames are read
 * into zmq_msg_t (no fixed buffer) and the JSON frame is parsed in place with its length (it
 * is not NUL-terminated on the wire). A payload frame is allowed only after a CHUNK, which
 * must have exactly one; anything else is BS_EPROTO "HELLO: unexpected extra frame". On every
 * decoding error out->id and, when readable, out->type are set so the caller can answer that
 * peer with an ERROR naming the refused type.
 */
#include "bs_proto.h"

#include <errno.h>
#include <string.h>
#include <zmq.h>

#include "bs_alloc.h"
#include "bs_log.h"

static int s_zmq_err(int e)
{
    return e == EAGAIN ? BS_EAGAIN : BS_EZMQ;
}

static int s_send_frame(void *sock, const void *data, size_t len, int more)
{
    int flags = ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0);
    if (zmq_send(sock, data, len, flags) < 0)
        return s_zmq_err(zmq_errno());
    return 0;
}

int bs_wire_send(void *sock, const void *id, size_t id_len, const cJSON *msg,
                 const void *payload, size_t payload_len)
{
    if (!sock || !msg || (id_len > 0 && !id) || (!payload && payload_len > 0))
        return BS_EINVAL;
    bs_err_t err;
    int type = -1;
    if (bs_msg_validate(msg, &type, &err) != 0) {
        BS_ERROR("proto", "refusing to send an invalid message: %s", err.msg);
        return BS_EPROTO;
    }
    int with_payload = payload != NULL || type == BS_MSG_CHUNK;
    if (with_payload && type != BS_MSG_CHUNK) {
        BS_ERROR("proto", "refusing to send a binary frame with %s (only CHUNK carries one)",
                 bs_msg_type_name((bs_msg_type_t)type));
        return BS_EINVAL;
    }
    size_t len = 0;
    char *text = bs_msg_encode(msg, &len);
    if (!text)
        return BS_ENOMEM;
    int rc = 0;
    int sent = 0; /* frames already queued: a failure after the first breaks the message */
    if (id_len > 0) {
        rc = s_send_frame(sock, id, id_len, 1);
        sent += rc == 0;
    }
    if (rc == 0) {
        rc = s_send_frame(sock, text, len, with_payload);
        sent += rc == 0;
    }
    if (rc == 0 && with_payload)
        rc = s_send_frame(sock, payload ? payload : "", payload_len, 0);
    bs_free(text);
    if (rc != 0 && sent > 0) {
        BS_WARN("proto", "send of %s failed after %d frame(s): %s",
                bs_msg_type_name((bs_msg_type_t)type), sent, zmq_strerror(zmq_errno()));
        rc = BS_EZMQ;
    }
    return rc;
}

int bs_wire_recv(void *sock, int with_id, bs_wire_msg_t *out, bs_err_t *err)
{
    memset(out, 0, sizeof *out);
    out->type = -1;
    if (!sock)
        return bs_err_set(err, BS_EINVAL, "bs_wire_recv: no socket");

    zmq_msg_t part, json, payload;
    zmq_msg_init(&part);
    zmq_msg_init(&json);
    zmq_msg_init(&payload);
    if (zmq_msg_recv(&part, sock, ZMQ_DONTWAIT) < 0) {
        int e = zmq_errno();
        zmq_msg_close(&part);
        zmq_msg_close(&json);
        zmq_msg_close(&payload);
        if (e == EAGAIN || e == EINTR)
            return bs_err_set(err, BS_EAGAIN, "no message waiting");
        return bs_err_set(err, BS_EZMQ, "receive failed: %s", zmq_strerror(e));
    }

    /* Consume every part: id (ROUTER), JSON, payload, then count any surplus. */
    int rc = 0;
    size_t frames = 0; /* frames after the id */
    int have_id = !with_id;
    for (;;) {
        int more = zmq_msg_more(&part);
        if (!have_id) {
            size_t n = zmq_msg_size(&part);
            if (n > BS_PROTO_MAX_ID)
                n = BS_PROTO_MAX_ID;
            memcpy(out->id, zmq_msg_data(&part), n);
            out->id_len = n;
            have_id = 1;
        } else {
            frames++;
            if (frames == 1)
                zmq_msg_move(&json, &part);
            else if (frames == 2)
                zmq_msg_move(&payload, &part);
        }
        if (!more)
            break;
        /* The other parts of a multipart message arrive with the first: no waiting. */
        int got;
        do
            got = zmq_msg_recv(&part, sock, ZMQ_DONTWAIT);
        while (got < 0 && zmq_errno() == EINTR);
        if (got < 0) {
            rc = bs_err_set(err, BS_EZMQ, "receive of a message part failed: %s",
                            zmq_strerror(zmq_errno()));
            break;
        }
    }
    zmq_msg_close(&part);

    if (rc == 0 && frames == 0)
        rc = bs_err_set(err, BS_EPROTO, "message: no JSON frame after the routing id");
    if (rc == 0)
        rc = bs_msg_decode(zmq_msg_data(&json), zmq_msg_size(&json), &out->msg, &out->type,
                           err);
    if (rc == 0) {
        const char *name = bs_msg_type_name((bs_msg_type_t)out->type);
        if (out->type == BS_MSG_CHUNK && frames != 2) {
            rc = bs_err_set(err, BS_EPROTO,
                            "CHUNK: expected exactly one binary frame after the JSON frame, "
                            "got %zu",
                            frames - 1);
        } else if (out->type != BS_MSG_CHUNK && frames > 1) {
            rc = bs_err_set(err, BS_EPROTO, "%s: unexpected extra frame (%zu after JSON)", name,
                            frames - 1);
        }
    }
    if (rc == 0 && frames == 2) {
        out->payload_len = zmq_msg_size(&payload);
        out->payload = bs_malloc(out->payload_len);
        if (!out->payload)
            rc = bs_err_set(err, BS_ENOMEM, "CHUNK: out of memory for %zu payload bytes",
                            out->payload_len);
        else if (out->payload_len > 0)
            memcpy(out->payload, zmq_msg_data(&payload), out->payload_len);
    }
    zmq_msg_close(&json);
    zmq_msg_close(&payload);
    if (rc != 0) {
        cJSON_Delete(out->msg);
        out->msg = NULL;
        bs_free(out->payload);
        out->payload = NULL;
        out->payload_len = 0;
    }
    return rc;
}

void bs_wire_msg_free(bs_wire_msg_t *m)
{
    if (!m)
        return;
    cJSON_Delete(m->msg);
    m->msg = NULL;
    bs_free(m->payload);
    m->payload = NULL;
    m->payload_len = 0;
    m->type = -1;
}

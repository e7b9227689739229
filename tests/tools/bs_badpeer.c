/*
 * bs_badpeer.c - a misbehaving agent for the integration tests: bs-badpeer ENDPOINT.
 *
 * Connects a DEALER to a running searcher and sends seven bad messages, one at a time, each
 * with raw zmq_send so nothing on this side can tidy them up. After each it waits up to 5 s
 * for an ERROR reply (other messages are skipped) and checks its code against what
 * proto/PROTOCOL.md ("Error replies") promises:
 *   1 bytes that are not JSON                     EPROTO
 *   2 a 300 KiB JSON frame (over BS_PROTO_MAX_JSON, under ZMQ_MAXMSGSIZE)  ETOOBIG
 *   3 a HEARTBEAT with "v": 99                    EVERSION
 *   4 {"type":"NOPE","v":1}                       EPROTO
 *   5 a JOB-shaped message missing its fields     EPROTO
 *   6 a valid HEARTBEAT before any HELLO          EHELLO
 *   7 a HEARTBEAT followed by a binary frame      EPROTO
 * It prints "ok case N: got ERROR CODE" or "FAIL case N: ..." per case, and exits 0 only when
 * all seven got the expected code (1 otherwise, 2 on a usage or socket error). The searcher
 * must still be alive and answering at the end: that is the point of the exercise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "bs_alloc.h"
#include "bs_proto.h"
#include "bs_util.h"

#define S_TIMEOUT_MS 5000
#define S_NCASES 7

typedef struct s_case {
    const char *what;
    const char *expect; /* ERROR code name */
} s_case_t;

static const s_case_t s_cases[S_NCASES] = {
    {"bytes that are not JSON", "EPROTO"},
    {"a 300 KiB JSON frame", "ETOOBIG"},
    {"a HEARTBEAT with v 99", "EVERSION"},
    {"an unknown type", "EPROTO"},
    {"a JOB missing its fields", "EPROTO"},
    {"a HEARTBEAT before HELLO", "EHELLO"},
    {"a HEARTBEAT with an extra binary frame", "EPROTO"},
};

/* Sends n frames; returns 0 or -1. */
static int s_send(void *sock, const void *const *frames, const size_t *lens, int n)
{
    for (int i = 0; i < n; i++) {
        if (zmq_send(sock, frames[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0) < 0) {
            fprintf(stderr, "bs-badpeer: send failed: %s\n", zmq_strerror(zmq_errno()));
            return -1;
        }
    }
    return 0;
}

static int s_send_text(void *sock, const char *text)
{
    const void *f[] = {text};
    size_t l[] = {strlen(text)};
    return s_send(sock, f, l, 1);
}

static int s_send_case(void *sock, int n)
{
    switch (n) {
    case 1:
        return s_send_text(sock, "this is not JSON {{{\x01\x02");
    case 2: {
        size_t len = 300 * 1024;
        const char head[] = "{\"type\":\"HEARTBEAT\",\"v\":1,\"pad\":\"";
        char *big = bs_malloc(len + 1);
        if (!big)
            return -1;
        memcpy(big, head, sizeof head - 1);
        memset(big + sizeof head - 1, 'x', len - (sizeof head - 1) - 2);
        memcpy(big + len - 2, "\"}", 3);
        int rc = s_send_text(sock, big);
        bs_free(big);
        return rc;
    }
    case 3:
        return s_send_text(sock, "{\"type\":\"HEARTBEAT\",\"v\":99}");
    case 4:
        return s_send_text(sock, "{\"type\":\"NOPE\",\"v\":1}");
    case 5:
        return s_send_text(sock, "{\"type\":\"JOB\",\"v\":1,\"job_id\":1}");
    case 6:
        return s_send_text(sock, "{\"type\":\"HEARTBEAT\",\"v\":1}");
    case 7: {
        const char *hb = "{\"type\":\"HEARTBEAT\",\"v\":1}";
        const void *f[] = {hb, "\x00\x01\x02\x03"};
        size_t l[] = {strlen(hb), 4};
        return s_send(sock, f, l, 2);
    }
    }
    return -1;
}

/* Waits for an ERROR; fills code (empty on timeout). Returns 0, or -1 with why filled. */
static int s_wait_error(void *sock, char *code, size_t cap, char *why, size_t whycap)
{
    uint64_t deadline = bs_now_ms() + S_TIMEOUT_MS;
    code[0] = '\0';
    for (;;) {
        uint64_t now = bs_now_ms();
        if (now >= deadline) {
            snprintf(why, whycap, "no ERROR reply within %d ms", S_TIMEOUT_MS);
            return -1;
        }
        zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&it, 1, (long)(deadline - now));
        if (n < 0) {
            snprintf(why, whycap, "poll failed: %s", zmq_strerror(zmq_errno()));
            return -1;
        }
        if (n == 0)
            continue;
        bs_wire_msg_t m;
        bs_err_t err;
        int rc = bs_wire_recv(sock, 0, &m, &err);
        if (rc == BS_EAGAIN)
            continue;
        if (rc != 0) {
            snprintf(why, whycap, "undecodable reply: %s", err.msg);
            bs_wire_msg_free(&m);
            return -1;
        }
        if (m.type != BS_MSG_ERROR) {
            fprintf(stderr, "bs-badpeer: skipping a %s while waiting for ERROR\n",
                    bs_msg_type_name((bs_msg_type_t)m.type));
            bs_wire_msg_free(&m);
            continue;
        }
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(m.msg, "code");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(m.msg, "message");
        snprintf(code, cap, "%s", c->valuestring);
        fprintf(stderr, "bs-badpeer: ERROR %s: %s\n", c->valuestring, msg->valuestring);
        bs_wire_msg_free(&m);
        return 0;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: bs-badpeer ENDPOINT   (e.g. tcp://127.0.0.1:5555)\n");
        return 2;
    }
    bs_alloc_init();
    void *ctx = zmq_ctx_new();
    void *sock = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
    if (!sock) {
        fprintf(stderr, "bs-badpeer: cannot create a socket: %s\n", zmq_strerror(zmq_errno()));
        return 2;
    }
    int zero = 0;
    int64_t maxmsg = BS_PROTO_MAX_MSG;
    char id[64];
    snprintf(id, sizeof id, "bs-badpeer-%d", (int)getpid());
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(sock, ZMQ_ROUTING_ID, id, strlen(id));
    if (zmq_connect(sock, argv[1]) != 0) {
        fprintf(stderr, "bs-badpeer: cannot connect to %s: %s\n", argv[1],
                zmq_strerror(zmq_errno()));
        zmq_close(sock);
        zmq_ctx_term(ctx);
        return 2;
    }
    int passed = 0;
    for (int n = 1; n <= S_NCASES; n++) {
        const s_case_t *c = &s_cases[n - 1];
        char code[40], why[BS_ERR_MSG_MAX + 64];
        if (s_send_case(sock, n) != 0) {
            printf("FAIL case %d: %s: could not send\n", n, c->what);
        } else if (s_wait_error(sock, code, sizeof code, why, sizeof why) != 0) {
            printf("FAIL case %d: %s: %s (expected ERROR %s)\n", n, c->what, why, c->expect);
        } else if (strcmp(code, c->expect) != 0) {
            printf("FAIL case %d: %s: got ERROR %s, expected %s\n", n, c->what, code,
                   c->expect);
        } else {
            printf("ok case %d: got ERROR %s\n", n, code);
            passed++;
        }
        fflush(stdout);
    }
    printf("%d of %d cases ok\n", passed, S_NCASES);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return passed == S_NCASES ? 0 : 1;
}

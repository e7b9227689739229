/*
 * fuzz_proto.c - libFuzzer target for the message codec (bs_msg_decode / bs_msg_encode).
 *
 * Any byte string goes to bs_msg_decode(), which must return cleanly (ASan and UBSan watch
 * for the rest). A message it accepts must survive encode -> decode again, and encoding is a
 * fixed point: encode(decode(encode(m))) == encode(m). Encoding may lengthen a message (cJSON
 * escapes control characters), so a re-encoding over BS_PROTO_MAX_JSON may be refused with
 * BS_ETOOBIG; nothing else may fail. Seeds: tests/fuzz/corpus/proto/.
 *   fuzz_proto -max_total_time=60 tests/fuzz/corpus/proto
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bs_alloc.h"
#include "bs_proto.h"

static void s_die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_proto: %s: %s\n", what, detail ? detail : "");
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    static int init;
    if (!init) {
        bs_alloc_init();
        init = 1;
    }
    cJSON *msg = NULL;
    int type = -2;
    bs_err_t err;
    int rc = bs_msg_decode(d, n, &msg, &type, &err);
    if (rc != 0) {
        if (msg)
            s_die("decode failed but returned a message", err.msg);
        if (type < -1 || type >= BS_MSG__COUNT)
            s_die("decode failed with an out-of-range type", err.msg);
        if (err.msg[0] == '\0')
            s_die("decode failed without a message", bs_err_name(rc));
        return 0;
    }
    if (!msg || type < 0 || type >= BS_MSG__COUNT)
        s_die("decode succeeded without a message or a type", NULL);
    size_t len1 = 0, len2 = 0;
    char *t1 = bs_msg_encode(msg, &len1);
    if (!t1)
        s_die("encode failed", NULL);
    cJSON *again = NULL;
    int type2 = -2;
    rc = bs_msg_decode(t1, len1, &again, &type2, &err);
    if (rc == BS_ETOOBIG && len1 > BS_PROTO_MAX_JSON) {
        bs_free(t1);
        cJSON_Delete(msg);
        return 0;
    }
    if (rc != 0)
        s_die("re-decode of an encoded message failed", err.msg);
    if (type2 != type)
        s_die("re-decode changed the type", t1);
    char *t2 = bs_msg_encode(again, &len2);
    if (!t2)
        s_die("second encode failed", NULL);
    if (len1 != len2 || memcmp(t1, t2, len1) != 0)
        s_die("encoding is not a fixed point", t1);
    bs_free(t1);
    bs_free(t2);
    cJSON_Delete(again);
    cJSON_Delete(msg);
    return 0;
}

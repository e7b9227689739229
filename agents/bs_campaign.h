/*
 * bs_campaign.h - the keys of a campaign file that the tools running the engine by hand need:
 * `bitscout-agent run --config`, `bitscout-agent sensitivity` and `bitscout export`.
 *
 * The searcher parses campaign files strictly and completely (searcher/bs_config.c); the agent
 * does not link that parser, so these tools read only what they use, with cJSON: model, name,
 * data.eval (images, labels, count), data.calibration (images, count), data.preprocess and
 * quantization, paths resolved against the campaign file's directory, every error naming the
 * file and the key. The parsed document stays in `root` for a caller reading more keys (the
 * sensitivity subcommand reads sensitivity and search_space).
 */
#ifndef BS_CAMPAIGN_H
#define BS_CAMPAIGN_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "bs_data.h"
#include "bs_error.h"
#include "bs_run.h"

typedef struct bs_campaign_file {
    char *name;           /* "name", or NULL */
    char *model;          /* "model" resolved, or NULL */
    char *images, *labels; /* data.eval.images / labels resolved, or NULL */
    int64_t count;        /* data.eval.count; 0: all */
    char *calib;          /* data.calibration.images resolved, or NULL */
    int64_t calib_count;  /* data.calibration.count; 256 when calibration is given, else 0 */
    bs_preprocess_t pre;  /* data.preprocess */
    bs_quant_opts_t quant; /* quantization, its calib_images / calib_count / pre pointing into
                              this struct (so the struct is not to be copied) */
    cJSON *root;          /* the whole file (owned) */
} bs_campaign_file_t;

/* Reads `file` into *c (bs_campaign_file_free it; zeroed on failure). data.eval and
 * data.calibration, when present, need their images. Errors: BS_ECONFIG naming file and key,
 * or what bs_read_file returns. */
int bs_campaign_file_load(const char *file, bs_campaign_file_t *c, bs_err_t *err);
void bs_campaign_file_free(bs_campaign_file_t *c);

/* Key readers for callers' extra keys; `where` is the key path for messages. An absent key
 * leaves *out as it is (and *present 0 when not NULL). */
int bs_campaign_count_key(const char *file, const cJSON *obj, const char *key, const char *where,
                          int64_t *out, int *present, bs_err_t *err);
int bs_campaign_obj_key(const char *file, const cJSON *parent, const char *key,
                        const char *where, const cJSON **out, bs_err_t *err);

#endif

/*
 * bs_progress.c - formats the progress line; the rate is evaluations per second since this
 * process started (resumed evaluations do not inflate it), and time left is the remaining
 * budget over that rate.
 */
#include "bs_progress.h"
#include "bs_alloc.h"
#include "bs_log.h"
#include "bs_util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct bs_progress {
    int live;
    int shown;          /* a live line is on screen */
    char line[256];
    double t0;
    int64_t done0;      /* evaluations stored when this process started */
    int started;
    double last_log;
};

static void s_write(const char *s)
{
    ssize_t w = write(STDERR_FILENO, s, strlen(s));
    (void)w;
}

static void s_hook(int after, void *ud)
{
    bs_progress_t *p = ud;
    if (!after && p->shown)
        s_write("\r\033[K");
    else if (after && p->shown)
        s_write(p->line);
}

bs_progress_t *bs_progress_new(int mode)
{
    bs_progress_t *p = bs_calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->live = mode < 0 ? isatty(STDERR_FILENO) : mode;
    p->t0 = bs_now_s();
    if (p->live)
        bs_log_set_hook(s_hook, p);
    return p;
}

static void s_format(bs_progress_t *p, const bs_progress_state_t *st, char *out, size_t cap)
{
    double el = bs_now_s() - p->t0;
    double rate = el > 0.5 ? (double)(st->done - p->done0) / el : 0.0;
    char left[32] = "-";
    int64_t remaining = st->budget - st->done;
    if (rate > 0 && remaining >= 0) {
        long s = (long)((double)remaining / rate + 0.5);
        snprintf(left, sizeof left, "%ld:%02ld", s / 60, s % 60);
    }
    char hv[32] = "";
    if (!isnan(st->hypervolume))
        snprintf(hv, sizeof hv, "  hv %.4f", st->hypervolume);
    snprintf(out, cap,
             "%s  evals %lld/%lld  failed %lld  in flight %d  agents %d  front %d%s  %.1f/s  "
             "left %s",
             st->campaign, (long long)st->done, (long long)st->budget, (long long)st->failed,
             st->in_flight, st->agents, st->front, hv, rate, left);
}

void bs_progress_update(bs_progress_t *p, const bs_progress_state_t *st, int final)
{
    if (!p)
        return;
    if (!p->started) {
        p->started = 1;
        p->done0 = st->done;
    }
    char text[224];
    s_format(p, st, text, sizeof text);
    if (p->live) {
        snprintf(p->line, sizeof p->line, "\r\033[K%s", text);
        s_write(p->line);
        p->shown = 1;
        if (final) {
            s_write("\n");
            p->shown = 0;
        }
        return;
    }
    double now = bs_now_s();
    if (final || now - p->last_log >= 5.0) {
        p->last_log = now;
        BS_INFO("progress", "%s", text);
    }
}

void bs_progress_destroy(bs_progress_t **pp)
{
    if (!pp || !*pp)
        return;
    if ((*pp)->live) {
        if ((*pp)->shown)
            s_write("\r\033[K");
        bs_log_set_hook(NULL, NULL);
    }
    bs_free(*pp);
    *pp = NULL;
}

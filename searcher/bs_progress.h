/*
 * bs_progress.h - the searcher's live progress line.
 *
 * On a terminal (stderr is a tty) one line is redrawn in place:
 *   fmnist-cnn  evals 23/60  failed 1  in flight 3  agents 3  front 5  2.1/s  left 0:18
 * and log lines erase it, print, and redraw it (through bs_log's hook). Elsewhere (CI, a log
 * file) the same facts go out as a plain log line at most every 5 seconds and at the end.
 */
#ifndef BS_PROGRESS_H
#define BS_PROGRESS_H

#include <stdint.h>

typedef struct bs_progress_state {
    const char *campaign;
    int64_t done;       /* evaluations stored, ok or failed */
    int64_t failed;
    int64_t budget;
    int in_flight;
    int agents;
    int front;
    double hypervolume; /* NAN until computed */
} bs_progress_state_t;

typedef struct bs_progress bs_progress_t;

/* mode: 1 force the live line, 0 force plain lines, -1 decide by isatty(stderr). */
bs_progress_t *bs_progress_new(int mode);
/* Redraws (terminal) or logs if due (plain). final=1 always prints. */
void bs_progress_update(bs_progress_t *p, const bs_progress_state_t *st, int final);
void bs_progress_destroy(bs_progress_t **p); /* clears the live line, removes the log hook */

#endif
